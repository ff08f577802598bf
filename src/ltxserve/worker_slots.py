"""Several job slots in one worker process: ``ltxserve worker --concurrency N``.

Each slot is a :class:`~ltxserve.worker.Worker` on a thread of its own, with
everything a worker process has: its runner child (and so its own engine), its own
``JobManager`` (a pool and a doorbell connection: the doorbell's leader state is
per waiter, so slots cannot share one), its own lease owner name. What they share is
the process: one pair of stop flags that the signal handlers throw, one metrics
directory, one clean-up of dead workers' job directories before any slot starts
(clean_workdirs removes this pid's directories too, which a second slot starting
later would take from the first).

Why threads rather than N worker processes: it is Celery's shape (one ``celery
worker -c N``), and on a machine with fewer cores than processes it costs less.
With 4 slots on the bench's 2 cores the workers' CPU per no-op job was
0.56-0.91 ms, against 0.79-1.23 ms for 4 processes in the same runs
(bench/README.md, "Worker concurrency"). A slot's Python holds the GIL only
between its blocking calls (the database, the runner pipe); generation itself runs
in the runner processes.

A slot whose worker raises (its engine failed to load: RunnerStartFailed) stops
the others after their jobs at hand, and the process exits with that error, as a
one-slot worker does.
"""

from __future__ import annotations

import logging
import threading

from ltxserve.config import Settings
from ltxserve.worker import Flag, Worker, clean_workdirs, install_stop_handlers

log = logging.getLogger("ltxserve.worker")


def run_slots(settings: Settings, engine_name: str, slots: int) -> None:
    """Run ``slots`` workers in this process until SIGTERM/SIGINT; re-raise the first
    error a slot ended with, once every slot has stopped."""
    stopping, abort = Flag(), Flag()
    install_stop_handlers(stopping, abort)  # on the main thread, which waits below
    clean_workdirs(settings.work_dir)
    errors: list[BaseException] = []

    def serve(worker: Worker) -> None:
        try:
            worker.run(clean=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            stopping.set()  # the other slots finish their jobs at hand and stop

    workers = []
    for _ in range(slots):
        try:
            workers.append(Worker(settings, engine_name, stopping=stopping, abort=abort))
        except BaseException:
            for made in workers:
                made.manager.close()
            raise
    threads = [
        threading.Thread(target=serve, args=(w,), name=f"slot-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    log.info("worker process running %d slots", slots)
    # join in slices: a signal handler runs on this thread only between them
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.25)
    if errors:
        raise errors[0]
