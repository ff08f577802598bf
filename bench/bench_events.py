"""Live events: what NOTIFY costs the worker's writes, and how fast a change reaches
a client streaming from another API process.

1. Write cost (PostgreSQL, in process): progress heartbeats and finishes through the
   real SqlJobStore, with the job-events NOTIFY (``RETURNING pg_notify``) on and
   patched off, in alternating blocks of 50 writes.
2. Fan-out latency (real processes): API A and API B (`serve --workers 0`) on one
   PostgreSQL, worker processes of B. ``--streams`` jobs are submitted on B and
   streamed at once from A (asyncio, one connection each); for each job, the time
   from its ``completed_at`` (stamped by the worker's finish) to the terminal event
   arriving on A. Also A's thread count while every stream is open (no thread per
   stream). ``--sqlite`` runs the same with one API process on SQLite (polled).

Usage: LTXSERVE_TEST_PG_URL=postgresql+psycopg://... python bench/bench_events.py
       [--streams 100] [--workers 2] [--writes 2000] [--sqlite] [--writes-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.core.test_submit import T2V  # noqa: E402
from tests.support import Server  # noqa: E402

from ltxserve.config import Settings  # noqa: E402
from ltxserve.jobs.lifecycle.states import JobStatus  # noqa: E402
from ltxserve.jobs.store import events  # noqa: E402
from ltxserve.jobs.store.db import open_store  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def new_db(admin_url: str) -> str:
    name = f"bench_ev_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_db(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def write_cost(db_url: str, writes: int) -> None:
    store = open_store(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=db_url))
    real = events.publishing
    off: Callable[..., Any] = lambda conn, stmt: stmt  # noqa: E731
    beats: dict[str, list[float]] = {"on": [], "off": []}
    finishes: dict[str, list[float]] = {"on": [], "off": []}
    for n in range(writes // 50):
        mode = "on" if n % 2 == 0 else "off"
        events.publishing = real if mode == "on" else off  # type: ignore[assignment]
        store.create_job("k", "text-to-video", {"n": n})
        job = store.claim("w", 30, 3, retention_ms=60_000)
        assert job is not None
        for i in range(50):
            t = time.perf_counter()
            store.heartbeat(job.id, "w", 30, (i + 1) / 51)
            beats[mode].append(time.perf_counter() - t)
        t = time.perf_counter()
        store.finish(job.id, "w", JobStatus.COMPLETED, 60_000, result={})
        finishes[mode].append(time.perf_counter() - t)
    events.publishing = real  # type: ignore[assignment]
    store.engine.dispose()
    print("write cost on PostgreSQL (ms): NOTIFY on vs off")
    for name, d in (("progress heartbeat", beats), ("finish", finishes)):
        on, off_ = d["on"], d["off"]
        print(
            f"  {name:<19} p50 {pct(on, 50) * 1e3:.3f} vs {pct(off_, 50) * 1e3:.3f}, "
            f"p99 {pct(on, 99) * 1e3:.3f} vs {pct(off_, 99) * 1e3:.3f}  (n={len(on)}+{len(off_)})"
        )


async def stream_all(base: str, key: str, ids: list[str]) -> list[float]:
    """Stream every job at once; each terminal event's delay after completed_at (s)."""
    limits = httpx.Limits(max_connections=len(ids) + 10)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600, limits=limits
    ) as c:

        async def one(job_id: str) -> float:
            async with c.stream("GET", f"/v2/text-to-video/{job_id}/events") as resp:
                assert resp.status_code == 200
                data = ""
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        data = line[6:]
                got = time.time()

            body = json.loads(data)
            assert body["status"] == "completed", body
            done = datetime.fromisoformat(body["completed_at"].replace("Z", "+00:00"))
            return got - done.timestamp()

        return list(await asyncio.gather(*(one(i) for i in ids)))


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def fan_out(env: dict[str, str], streams: int, workers: int, two: bool) -> None:
    root = Path(tempfile.mkdtemp())
    a = Server(root / "a", env=env, workers=0 if two else workers).start()
    b = Server(root / "b", env=env, workers=0, api_key=a.api_key).start() if two else a
    procs = []
    try:
        if two:
            for n in range(workers):
                own = root / f"w{n}"
                own.mkdir()
                (own / "blobs").symlink_to(b.data_dir / "blobs", target_is_directory=True)
                procs.append(b.spawn_worker(own)[0])
        with b.client() as cb:
            ids = [cb.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(streams)]
        assert a.proc is not None
        before = threads(a.proc.pid)
        peak = [before]

        async def run() -> list[float]:
            task = asyncio.create_task(stream_all(a.base_url, a.api_key, ids))
            while not task.done():
                peak.append(threads(a.proc.pid))  # type: ignore[union-attr]
                await asyncio.sleep(0.2)
            return await task

        started = time.monotonic()
        lat = asyncio.run(run())
        took = time.monotonic() - started
        where = "another API process (PostgreSQL, NOTIFY)" if two else "the API (SQLite, polled)"
        print(
            f"finish -> event on {where}: {streams} concurrent streams, {took:.0f} s\n"
            f"  p50 {pct(lat, 50) * 1e3:.0f} ms, p99 {pct(lat, 99) * 1e3:.0f} ms, "
            f"max {max(lat) * 1e3:.0f} ms, mean {statistics.mean(lat) * 1e3:.0f} ms\n"
            f"  API threads: {before} before, {max(peak)} at most while streaming"
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        a.stop()
        if two:
            b.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--writes-only", action="store_true", help="the write cost alone")
    args = ap.parse_args()
    if args.sqlite:
        fan_out({}, args.streams, args.workers, two=False)
        return
    admin = os.environ["LTXSERVE_TEST_PG_URL"]
    url = new_db(admin)
    try:
        write_cost(url, args.writes)
        if args.writes_only:
            return
        env: dict[str, Any] = {"LTXSERVE_DATABASE_URL": url, "LTXSERVE_SECRET": "bench"}
        fan_out(env, args.streams, args.workers, two=True)
    finally:
        drop_db(admin, url)


if __name__ == "__main__":
    main()
