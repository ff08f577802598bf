"""CPU per no-op job by process group (API, PostgreSQL, workers + runners, client).

bench_peers' ltxserve (an API process, N real workers running the no-op job,
--clients `http.client` threads submitting back to back), on PostgreSQL. For each
worker count:
--jobs submits while the workers run them; each group's CPU (user + system from
/proc, every process of the group) over the run, per job. With --baseline-src the
other tree runs the same, before this one, for each worker count in turn.
--listeners N holds N more connections to the database, idle, each LISTENing on a
channel nobody notifies: what every NOTIFY costs PostgreSQL per listening backend.

Usage: python bench/bench_cpu.py [--jobs 600] [--workers 1,4] [--baseline-src ...]
       [--listeners 0] [--clients 1] [--shapes slots|processes|slots,processes]
Needs $LTXSERVE_TEST_PG_URL or --pg-url (scripts/pg-start.sh); PostgreSQL on this
machine (its backends are counted).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import Ltxserve, submit_many, wait_done  # noqa: E402
from bench_submit import admin_engine, cpu_seconds  # noqa: E402

WORKER_MARKS = (b"peer_jobs.py", b"multiprocessing")  # a worker, its runner child


def groups(api_pid: int) -> dict[str, float]:
    """CPU seconds so far of the API process, PostgreSQL's processes, the workers."""
    out = {"api": cpu_seconds(api_pid), "pg": 0.0, "workers": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            if cmd.startswith(b"postgres"):
                out["pg"] += cpu_seconds(int(entry))
            elif any(mark in cmd for mark in WORKER_MARKS):
                out["workers"] += cpu_seconds(int(entry))
        except OSError:  # gone meanwhile
            continue
    return out


def listen_idly(url: str, n: int) -> list[Any]:
    """``n`` connections LISTENing on a channel of their own, never read."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
    conns = [psycopg.connect(conninfo, autocommit=True) for _ in range(n)]
    for conn in conns:
        conn.execute("LISTEN bench_cpu_elsewhere")
    return conns


def run(system: Ltxserve, tmp: Path, workers: int, jobs: int, listeners: int, clients: int) -> str:
    system.start_workers(workers, tmp / f"record-{system.name}-{workers}")
    idle = listen_idly(system.url, listeners)
    try:
        wait_done(system, [system.submit("x") for _ in range(20)], 60)  # warm
        time.sleep(0.5)
        g0, c0, t0 = groups(system.srv.proc.pid), time.process_time(), time.time()
        ids = submit_many(system, jobs, clients)
        t1 = wait_done(system, ids, 600)
        g1, c1 = groups(system.srv.proc.pid), time.process_time()
    finally:
        system.stop_workers()
        for conn in idle:
            conn.close()
    per = {k: (g1[k] - g0[k]) / jobs * 1e3 for k in g0}
    per["client"] = (c1 - c0) / jobs * 1e3
    cells = "  ".join(f"{k} {v:.2f}" for k, v in per.items())
    return f"{system.name:13s} w{workers}: {jobs / (t1 - t0):4.0f} jobs/s  {cells}  ms/job"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=600)
    ap.add_argument("--workers", default="1,4")
    ap.add_argument("--baseline-src", help="the other tree's src directory")
    ap.add_argument("--listeners", type=int, default=0, help="idle LISTEN connections")
    ap.add_argument("--clients", type=int, default=1, help="submitting threads")
    ap.add_argument(
        "--shapes",
        default="slots",
        help="how N workers run: slots (one process, `--concurrency N`), processes "
        "(N one-slot processes), or both side by side: slots,processes",
    )
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    args = ap.parse_args()
    admin = admin_engine(args.pg_url)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        systems = [
            Ltxserve(tmp, admin, args.pg_url, client="stdlib", processes=shape == "processes")
            for shape in args.shapes.split(",")
        ]
        if args.baseline_src:
            systems.insert(0, Ltxserve(tmp, admin, args.pg_url, args.baseline_src, "stdlib"))
        try:
            for n in (int(x) for x in args.workers.split(",")):
                for system in systems:
                    print(run(system, tmp, n, args.jobs, args.listeners, args.clients), flush=True)
        finally:
            for system in systems:
                system.close()


if __name__ == "__main__":
    main()
