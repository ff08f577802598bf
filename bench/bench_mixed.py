"""Submits and polls mixed at high concurrency, on SQLite and on PostgreSQL (issue 17, item 1).

Starts one `ltxserve serve` process (API only, no workers) per store on loopback and
sends 1,000 `POST /v2/text-to-video` interleaved with 10,000 status polls over 200
keep-alive connections (tests/load.py, raw asyncio streams: httpx would make the
client the bottleneck on 2 cores). Prints submits/s, polls/s and p50/p99 of each,
and fails on any status other than 202/200. The same load runs as a CI test
(tests/hostile/test_concurrency.py).

Measured on the 2-core development machine, shared with other work (load average
2-10), client and PostgreSQL on the same cores; 1,000 submits + 10,000 polls, 200
connections:

         store | submit/s  p50 ms  p99 ms | poll/s  p50 ms  p99 ms | wall s | non-2xx
        sqlite |      138     410     743 |   1380      90     259 |    7.2 | none
    postgresql |       41     443     868 |    408     420     816 |   24.5 | none

Before issue 17's fix the SQLite run never finished: once 15 API threads had each
pinned a pooled connection, every further write waited 30 s and answered 500.

Usage: python bench/bench_mixed.py [--submits 1000] [--polls 10000] [--concurrency 200]
       [--pg-url postgresql+psycopg://postgres@127.0.0.1:54329/postgres]
PostgreSQL is skipped without --pg-url or $LTXSERVE_TEST_PG_URL (scripts/pg-start.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.load import mixed_requests, run_load  # noqa: E402
from tests.support import Server  # noqa: E402

T2V = {
    "prompt": "bench",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
    "fps": 24,
}


def run(label: str, env: dict[str, str], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp), workers=0, env={**env, "LTXSERVE_KEY_CACHE_SECONDS": "2"}).start()
        try:
            with srv.client() as c:
                ids = [c.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(20)]
            load = mixed_requests(
                srv.api_key,
                args.submits,
                args.polls,
                ids,
                lambda i: {**T2V, "prompt": f"bench {i}"},
            )
            res = asyncio.run(run_load(srv.port, load, args.concurrency))
        finally:
            srv.stop()
    bad = {k: v for k, v in res.statuses().items() if k not in (200, 202)}
    print(
        f"{label:>10} | {args.submits / res.wall:>9.0f} "
        f"{res.percentile('submit', 50) * 1e3:>7.1f} {res.percentile('submit', 99) * 1e3:>7.1f} | "
        f"{args.polls / res.wall:>7.0f} {res.percentile('poll', 50) * 1e3:>7.1f} "
        f"{res.percentile('poll', 99) * 1e3:>7.1f} | {res.wall:>6.1f} | {bad or 'none'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--submits", type=int, default=1000)
    ap.add_argument("--polls", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    args = ap.parse_args()
    print(
        f"ltxserve mixed load: {args.submits} submits + {args.polls} polls over "
        f"{args.concurrency} connections, API only, {os.cpu_count()} cores"
    )
    print(
        f"{'store':>10} | {'submit/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'poll/s':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} | {'wall s':>6} | non-2xx"
    )
    run("sqlite", {}, args)
    if args.pg_url:
        from sqlalchemy import create_engine, text

        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run(
                "postgresql",
                {
                    "LTXSERVE_DATABASE_URL": args.pg_url.rsplit("/", 1)[0] + f"/{name}",
                    "LTXSERVE_SECRET": "bench-secret",  # required with PostgreSQL
                },
                args,
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
