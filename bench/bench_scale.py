"""Cost as work grows: poll, claim and retention with 1,000,000 finished jobs (#13 item 5).

On two databases of its own on PostgreSQL, one with 100 finished jobs and one with
--rows more bulk-loaded by COPY into the store's own `jobs` table (the column list
comes from jobs/store/tables.py), measures side by side, the two taking turns call by
call so that the load of a shared machine falls on both alike:
    poll       JobStore.view(id): the API's status lookup (the columns of JobView)
    claim      JobStore.claim() taking a pending job (then finished, not timed)
    idle claim JobStore.claim() finding nothing: what every idle worker runs per poll
and prints the ratio. Target: within 1.5x of the small table.

Then retention: the table is refilled with --rows finished jobs whose retention has
ended, and JobManager.sweep() (the API's sweeper) deletes them in its batches, while
another process submits a job (JobStore.create_job, the submit's insert) every 5 ms
and times each one, with lock_timeout at 100 ms so that an insert the sweep blocks on
a lock for longer fails and is counted. Prints the sweep's rate and the submit latency
(p50, p99, max, count over 100 ms, lock waits over 100 ms) during the sweep next to
the 10 s before it. Target: no submit blocked for more than 100 ms.

Usage: python bench/bench_scale.py [--rows 1000000] [--pg-url postgresql+psycopg://...]
PostgreSQL from --pg-url or $LTXSERVE_TEST_PG_URL (scripts/pg-start.sh); the bench
creates and drops databases of its own. Needs ~1 GB of disk on the server.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltxserve.config import Settings  # noqa: E402
from ltxserve.errors import StoreBusyError  # noqa: E402
from ltxserve.jobs.contract.catalog import Catalog  # noqa: E402
from ltxserve.jobs.lifecycle.manager import JobManager  # noqa: E402
from ltxserve.jobs.lifecycle.states import JobStatus  # noqa: E402
from ltxserve.jobs.store.db import open_store  # noqa: E402
from ltxserve.jobs.store.sql import JobStore, now_ms  # noqa: E402
from ltxserve.jobs.store.tables import jobs  # noqa: E402
from ltxserve.storage.local import LocalBlobStore  # noqa: E402

REQUEST = {
    "prompt": "a red fox running through fresh snow at dawn, cinematic",
    "model": "ltx-2-3-fast",
    "duration": 6,
    "resolution": "1920x1080",
    "fps": 25,
    "generate_audio": True,
}
RET = 24 * 3600 * 1000
KEY = "k" * 32


def result_for(job_id: str) -> dict[str, Any]:
    return {
        "video_url": {
            "key": f"jobs/{job_id}/video.mp4",
            "content_type": "video/mp4",
            "size": 4_812_345,
            "engine": "preview",
            "duration": 6.0,
        }
    }


def bulk_load(store: JobStore, rows: int, *, expired: bool) -> list[str]:
    """COPY ``rows`` completed jobs into the store's table; return a sample of their ids."""
    cols = [c.name for c in jobs.c]
    now = now_ms()
    request = orjson.dumps(REQUEST).decode()
    sample: list[str] = []
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY jobs ({', '.join(cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for i in range(rows):
                job_id = str(uuid.uuid4())
                if i % (rows // 2000 or 1) == 0:
                    sample.append(job_id)
                created = now - RET + i * (RET // rows)  # a day of submissions, in order
                done = created + 30_000
                values = {
                    "id": job_id,
                    "api_key_id": KEY,
                    "endpoint": "text-to-video",
                    "status": "completed",
                    "request": request,
                    "created_at": created,
                    "started_at": created + 50,
                    "completed_at": done,
                    # expired: retention ended an hour ago; else it ends in a day
                    "expires_at": now - 3_600_000 if expired else done + RET,
                    "result": orjson.dumps(result_for(job_id)).decode(),
                    "error_type": None,
                    "error_message": None,
                    "progress": 1.0,
                    "attempts": 1,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "version": 3,  # pending, processing, completed (live events' ids)
                }
                copy.write_row([values[c] for c in cols])
        raw.commit()
        cur.execute("ANALYZE jobs")  # what autovacuum does after a bulk change
        raw.commit()
    finally:
        raw.close()
    return sample


Side = tuple[JobStore, list[str]]  # a store and ids of finished jobs to poll in it


def measure(sides: list[Side], n: int) -> list[dict[str, list[float]]]:
    """Per-call seconds of a poll, a claim of a pending job and an idle claim, per side.

    The sides take turns call by call, so a burst of load from elsewhere on the
    machine lands on both alike.
    """
    out: list[dict[str, list[float]]] = [{"poll": [], "claim": [], "idle claim": []} for _ in sides]
    picks = [iter(random.choices(ids, k=n)) for _, ids in sides]
    for _ in range(n):
        for fig, (store, _), pick in zip(out, sides, picks, strict=True):
            job_id = next(pick)
            t0 = time.perf_counter()
            store.view(job_id)
            fig["poll"].append(time.perf_counter() - t0)
    for _ in range(max(50, n // 10)):
        for fig, (store, _) in zip(out, sides, strict=True):
            store.create_job(KEY, "text-to-video", REQUEST)
            t0 = time.perf_counter()
            job = store.claim("bench", 30, 3, retention_ms=RET)
            fig["claim"].append(time.perf_counter() - t0)
            assert job is not None
            store.finish(job.id, "bench", JobStatus.COMPLETED, RET, result=result_for(job.id))
    for _ in range(max(50, n // 10)):
        for fig, (store, _) in zip(out, sides, strict=True):
            t0 = time.perf_counter()
            store.claim("bench", 30, 3, retention_ms=RET)
            fig["idle claim"].append(time.perf_counter() - t0)
    return out


def submitter(url: str, data_dir: str, stop: Any, out: Any, period: float) -> None:
    """Another process submitting a job every ``period`` s; sends back each latency."""
    # lock_timeout = 100 ms: an insert the sweep kept waiting on a lock longer than
    # that fails (StoreBusyError) instead of only being slow, and is counted apart
    settings = Settings(data_dir=Path(data_dir), database_url=url, db_timeout_seconds=0.1)
    store = open_store(settings, run_migrations=False)
    lat: list[tuple[float, float]] = []
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            store.create_job(KEY, "text-to-video", REQUEST)
            lat.append((time.time(), time.perf_counter() - t0))
        except StoreBusyError:
            lat.append((time.time(), -1.0))
        time.sleep(period)
    out.put(lat)
    store.engine.dispose()


def ms(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[int(q) - 1] * 1e3 if q < 100 else max(xs) * 1e3


def mean_ms(xs: list[float]) -> float:
    return statistics.mean(xs) * 1e3


def retention(url: str, store: JobStore, rows: int, tmp: Path) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs"))
    t0 = time.perf_counter()
    bulk_load(store, rows, expired=True)
    print(f"\nloaded {rows:,} expired jobs in {time.perf_counter() - t0:.1f} s")
    settings = Settings(data_dir=tmp / "data", database_url=url)
    manager = JobManager(settings, store, LocalBlobStore(settings.blob_dir), Catalog.load())
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=submitter, args=(url, str(tmp / "sub"), stop, out, 0.005))
    proc.start()
    time.sleep(13)  # the child's start-up, then 10 s of baseline with no sweep
    t_sweep = time.time()
    t0 = time.perf_counter()
    res = manager.sweep()
    sweep_s = time.perf_counter() - t0
    t_end = time.time()
    time.sleep(1)
    stop.set()
    lat = out.get(timeout=60)
    proc.join(30)
    base = [d for t, d in lat if t_sweep - 10 <= t < t_sweep]
    during = [d for t, d in lat if t_sweep <= t <= t_end]
    busy = [sum(d < 0 for d in xs) for xs in (base, during)]
    base, during = ([d for d in xs if d >= 0] for xs in (base, during))
    assert res["deleted"] >= rows, res
    print(
        f"sweep deleted {res['deleted']:,} jobs in {sweep_s:.1f} s "
        f"({res['deleted'] / sweep_s:,.0f} jobs/s, batches of {BATCH} ids)"
    )
    print(
        f"{'submits':>22} | {'n':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'>100 ms':>7} {'lock waits >100 ms':>18}"
    )
    for label, xs, locked in (
        ("no sweep (10 s before)", base, busy[0]),
        ("during the sweep", during, busy[1]),
    ):
        print(
            f"{label:>22} | {len(xs):>6} {ms(xs, 50):>7.1f} {ms(xs, 99):>7.1f} "
            f"{ms(xs, 100):>7.1f} {sum(x > 0.1 for x in xs):>7} {locked:>18}"
        )


BATCH = 500  # JobStore.expired_ids' default limit, used by JobManager.sweep


def finished_jobs(store: JobStore, n: int) -> list[str]:
    """``n`` jobs submitted, claimed and finished through the store, as the API and a worker do."""
    ids = [store.create_job(KEY, "text-to-video", REQUEST).id for _ in range(n)]
    for job_id in ids:
        job = store.claim("bench", 30, 3, retention_ms=RET)
        assert job is not None
        store.finish(job_id, None, JobStatus.COMPLETED, RET, result=result_for(job_id))
    return ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=2000, help="polls per table and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    args = ap.parse_args()
    if not args.pg_url:
        raise SystemExit("needs --pg-url or $LTXSERVE_TEST_PG_URL (scripts/pg-start.sh)")
    tag = uuid.uuid4().hex[:8]
    names = [f"bench_scale_{tag}_small", f"bench_scale_{tag}_big"]
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    urls = [args.pg_url.rsplit("/", 1)[0] + f"/{name}" for name in names]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            small, big = (
                open_store(Settings(data_dir=Path(tmp) / f"d{i}", database_url=url))
                for i, url in enumerate(urls)
            )
            print(
                f"ltxserve cost as work grows: PostgreSQL, {os.cpu_count()} cores; two "
                f"databases taking turns call by call, {args.rounds} rounds of "
                f"{args.samples} polls and {max(50, args.samples // 10)} claims each"
            )
            small_ids = finished_jobs(small, 100)
            finished_jobs(big, 100)
            t0 = time.perf_counter()
            big_ids = bulk_load(big, args.rows, expired=False)
            print(f"loaded {args.rows:,} finished jobs by COPY in {time.perf_counter() - t0:.1f} s")
            sides = [(small, small_ids), (big, big_ids)]
            measure(sides, 200)  # warm the pools and the plans
            figures: list[dict[str, list[float]]] = [{}, {}]
            for _ in range(args.rounds):
                for fig, one in zip(figures, measure(sides, args.samples), strict=True):
                    for op, xs in one.items():
                        fig.setdefault(op, []).extend(xs)
            print(
                f"{'operation':>10} | {'100 jobs':>9} {'p50 ms':>7} {'mean ms':>7} | "
                f"{f'{args.rows:,} jobs':>9} {'p50 ms':>7} {'mean ms':>7} | {'ratio p50':>9} "
                f"{'ratio mean':>10}"
            )
            for op, s_xs in figures[0].items():
                b_xs = figures[1][op]
                print(
                    f"{op:>10} | {'':>9} {ms(s_xs, 50):>7.2f} {mean_ms(s_xs):>7.2f} | "
                    f"{'':>9} {ms(b_xs, 50):>7.2f} {mean_ms(b_xs):>7.2f} | "
                    f"{ms(b_xs, 50) / ms(s_xs, 50):>8.2f}x "
                    f"{statistics.mean(b_xs) / statistics.mean(s_xs):>9.2f}x"
                )
            small.engine.dispose()
            retention(urls[1], big, args.rows, Path(tmp))
            big.engine.dispose()
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
