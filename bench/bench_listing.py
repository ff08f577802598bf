"""The cost of a GET /v2/jobs page as a key's jobs grow (#14 item 4, listing).

On a PostgreSQL database of its own, loads --rows jobs for one key ("big"), 1,000
for another ("small") and --rows / 2 for 50 other keys, ANALYZEs, then times
``JobStore.list_jobs`` (the SQL the route runs, a page of 20 plus one) for
    first        the newest page
    deep         a page from a cursor half way down the key's jobs
    endpoint     the newest page of one endpoint (1 job in 7)
    rare status  the newest page of `failed` jobs (1 in 100): the scan passes the
                 rows between matches, so this one grows with the gaps, not the total
side by side for the big and the small key (turn about, so machine load falls on
both alike), prints the medians and their ratio, and the plan (EXPLAIN ANALYZE,
BUFFERS) of the big key's first and deep pages: an Index Scan (Backward) on
ix_jobs_key_created, stopping after the page. Target: big/small within 1.5x for
first, deep and endpoint.

Usage: python bench/bench_listing.py [--rows 300000] [--pg-url postgresql+psycopg://...]
PostgreSQL from --pg-url or $LTXSERVE_TEST_PG_URL; the database is created and dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ltxserve.config import Settings  # noqa: E402
from ltxserve.jobs.lifecycle.states import JobStatus  # noqa: E402
from ltxserve.jobs.store.base import ListQuery  # noqa: E402
from ltxserve.jobs.store.db import open_store  # noqa: E402
from ltxserve.jobs.store.listing import list_jobs  # noqa: E402
from ltxserve.jobs.store.sql import SqlJobStore, now_ms  # noqa: E402

LOAD = """
INSERT INTO jobs (id, api_key_id, endpoint, status, request, created_at, completed_at,
                  expires_at, result, attempts)
SELECT md5(:key || i::text), :key,
       (ARRAY['text-to-video','image-to-video','audio-to-video','retake','extend',
              'video-to-video-hdr','video-to-video-reframe'])[1 + i % 7],
       CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'completed' END,
       '{"prompt": "a red fox"}'::json, :base + i * :step, :base + i * :step + 1000,
       :far, '{}'::json, 1
FROM generate_series(1, :n) AS i
"""


def load(store: SqlJobStore, key: str, n: int, base: int, step: int) -> None:
    far = now_ms() + 30 * 86400_000
    with store.engine.begin() as conn:
        conn.execute(text(LOAD), {"key": key, "n": n, "base": base, "step": step, "far": far})


def query(key: str, **kw: Any) -> ListQuery:
    return ListQuery(api_key_id=key, now=now_ms(), limit=21, **kw)


def median_ms(store: SqlJobStore, q: ListQuery, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        store.list_jobs(q)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def explain(store: SqlJobStore, q: ListQuery) -> str:
    """EXPLAIN ANALYZE of the very statement list_jobs sends (captured from a real call)."""
    captured: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cur: Any, statement: str, params: Any, *_rest: Any) -> None:
        captured.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        with store.engine.connect() as conn:
            list_jobs(conn, q)
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    statement, params = captured[-1]
    with store.engine.connect() as conn:
        cur = conn.connection.cursor()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params)
        rows = cur.fetchall()
    return "\n".join("    " + r[0] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    args = ap.parse_args()
    if not args.pg_url:
        sys.exit("PostgreSQL needed: --pg-url or LTXSERVE_TEST_PG_URL")
    name = f"bench_listing_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(Settings(data_dir=Path(tmp), database_url=url))
            base = now_ms() - 10 * 86400_000
            t0 = time.perf_counter()
            load(store, "big", args.rows, base, 1)
            load(store, "small", 1000, base, args.rows // 1000)
            for k in range(50):
                load(store, f"other{k:02d}", args.rows // 100, base, 100)
            with store.engine.begin() as conn:
                conn.execute(text("ANALYZE jobs"))
                total = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
            print(
                f"loaded {total:,} jobs in {time.perf_counter() - t0:.1f} s "
                f"(big key {args.rows:,}, small key 1,000)"
            )
            mid = {"big": base + args.rows // 2, "small": base + args.rows // 2}
            cases = {
                "first": {},
                "deep": {"after": None},
                "endpoint": {"endpoints": ("retake",)},
                "rare status": {"statuses": (JobStatus.FAILED,)},
            }
            print(f"{'page':<12} {'big ms':>8} {'small ms':>9} {'ratio':>6}")
            for label, kw in cases.items():
                got = {}
                for key in ("big", "small"):
                    extra = dict(kw)
                    if "after" in extra:
                        extra["after"] = (mid[key], "z" * 32)
                    got[key] = query(key, **extra)
                big, small = [], []
                for _ in range(args.calls // 10):
                    big.append(median_ms(store, got["big"], 10))
                    small.append(median_ms(store, got["small"], 10))
                b, s = statistics.median(big), statistics.median(small)
                print(f"{label:<12} {b:8.3f} {s:9.3f} {b / s:6.2f}x")
            print("\nplan, big key, first page:")
            print(explain(store, query("big")))
            print("\nplan, big key, deep page:")
            print(explain(store, query("big", after=(mid["big"], "z" * 32))))
            print("\nplan, big key, rare status:")
            print(explain(store, query("big", statuses=(JobStatus.FAILED,))))
            store.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
