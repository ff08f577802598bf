"""The submit path alone, two trees side by side: API CPU per submit and submits/s.

Two `serve --workers 0` processes on PostgreSQL (bench_peers' ltxserve, as deployed),
one from this tree and one from --baseline-src, each with a database of its own. One
client thread sends batches of --jobs `http.client` submits to each in turn (the order
alternating every round), so a shared machine's load falls on both alike; the pending
jobs are marked completed between batches, so the queue stays short. Per batch: the
API process's CPU (user + system, /proc) per submit and the batch's submits/s. Prints
the medians over --rounds and every round's CPU figure.

Usage: python bench/bench_submit.py --baseline-src <other tree>/src [--jobs 500]
       [--rounds 6] [--pg-url ...]
Needs $LTXSERVE_TEST_PG_URL or --pg-url (scripts/pg-start.sh).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import Ltxserve  # noqa: E402

CLEAR = text("UPDATE jobs SET status = 'completed', completed_at = 1 WHERE status = 'pending'")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin_engine(pg_url: str | None) -> Engine:
    """An AUTOCOMMIT engine on the server the benches make their databases on."""
    if not pg_url:
        raise SystemExit("needs --pg-url or $LTXSERVE_TEST_PG_URL (scripts/pg-start.sh)")
    return create_engine(pg_url, isolation_level="AUTOCOMMIT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-src", required=True, help="the other tree's src directory")
    ap.add_argument("--jobs", type=int, default=500, help="submits per batch")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    args = ap.parse_args()
    admin = admin_engine(args.pg_url)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        trees = {
            "base": Ltxserve(tmp, admin, args.pg_url, src=args.baseline_src, client="stdlib"),
            "new": Ltxserve(tmp, admin, args.pg_url, client="stdlib"),
        }
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        rate: dict[str, list[float]] = {name: [] for name in trees}
        try:
            for system in trees.values():  # warm: connections, prepared statements
                for _ in range(200):
                    system.submit("x")
            for r in range(args.rounds):
                for name in ("base", "new") if r % 2 == 0 else ("new", "base"):
                    system = trees[name]
                    with system.sql.begin() as conn:
                        conn.execute(CLEAR)
                    pid = system.srv.proc.pid
                    c0, t0 = cpu_seconds(pid), time.perf_counter()
                    for _ in range(args.jobs):
                        system.submit("x")
                    c1, t1 = cpu_seconds(pid), time.perf_counter()
                    cpu[name].append((c1 - c0) / args.jobs * 1e3)
                    rate[name].append(args.jobs / (t1 - t0))
        finally:
            for system in trees.values():
                system.close()
    print(f"{args.jobs} submits per batch, {args.rounds} rounds alternating, one http.client")
    for name in trees:
        each = " ".join(f"{x:.2f}" for x in cpu[name])
        print(
            f"{name:4s}  API CPU per submit {statistics.median(cpu[name]):.2f} ms ({each})"
            f"  submits/s {statistics.median(rate[name]):.0f}"
        )


if __name__ == "__main__":
    main()
