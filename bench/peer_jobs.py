"""The one no-op job of bench/bench_peers.py, as each system runs it.

Every variant does the same thing: append "<job id> <wall-clock start>" to the file
named by $BENCH_RECORD (one short O_APPEND write, atomic between processes) and
return nothing. The bench reads the file for submit -> start latency.

    ltxserve       NoopEngine, run by a real `Worker` (claim, lease, heartbeat, runner
                   pipe, finish): `python bench/peer_jobs.py` starts one worker
    Celery         `celery -A peer_jobs:celery_app worker` (Redis broker + result backend)
    procrastinate  `procrastinate --app=peer_jobs.procrastinate_app worker`

The ltxserve engine is registered here, not in ltxserve.engines: it is a bench
tool, not an engine anyone should deploy. The runner child is started with the
``spawn`` method, which imports this file again in the child (as ``__mp_main__``),
so the registration below runs there too before the runner looks the engine up.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def record(job_id: str) -> None:
    fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{job_id} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


# -- ltxserve -------------------------------------------------------------------
class NoopEngine:
    """An engine that writes nothing: the job path (store, worker, runner) alone."""

    name = "noop"

    def __init__(self, settings: Any) -> None:
        pass

    def load(self) -> None:
        pass

    def handlers(self) -> Any:
        return {"text-to-video": self.run}

    def run(self, job: Any, progress: Any) -> Any:
        from ltxserve.engines.base import EngineResult

        record(job.job_id)
        return EngineResult({})


def _register() -> None:
    from ltxserve import engines

    engines.ENGINES["noop"] = f"{__name__}:NoopEngine"


_register()

# -- Celery ----------------------------------------------------------------------
celery_app: Any = None
if os.environ.get("BENCH_REDIS_URL"):
    from celery import Celery

    celery_app = Celery(
        "bench",
        broker=os.environ["BENCH_REDIS_URL"] + "/0",
        backend=os.environ["BENCH_REDIS_URL"] + "/1",
    )
    celery_app.conf.update(worker_hijack_root_logger=False, broker_connection_retry=True)

    @celery_app.task(name="noop")
    def celery_noop(job_id: str) -> None:
        record(job_id)


# -- procrastinate --------------------------------------------------------------
procrastinate_app: Any = None
if os.environ.get("BENCH_PROCRASTINATE_DSN"):
    import procrastinate

    procrastinate_app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_PROCRASTINATE_DSN"])
    )

    @procrastinate_app.task(name="noop")
    def procrastinate_noop(job_id: str) -> None:
        record(job_id)


if __name__ == "__main__":
    import logging

    from ltxserve.config import Settings
    from ltxserve.worker import run_worker

    logging.basicConfig(level=os.environ.get("LTXSERVE_LOG_LEVEL", "warning").upper())
    if os.environ.get("BENCH_PROFILE"):  # where the worker's time goes (wall clock)
        import cProfile

        with cProfile.Profile() as prof:
            run_worker(Settings(), "noop")
        prof.dump_stats(f"{os.environ['BENCH_PROFILE']}.{os.getpid()}")
    else:
        run_worker(Settings(), "noop")
