"""The worker: claim -> resolve inputs -> run engine (in the runner child) -> store -> finish.

One worker runs one job at a time (a process may run several workers as slots:
worker_slots.py, ``--concurrency``). It holds a lease on its job and renews
it by heartbeat; if the worker vanishes, the lease runs out and another worker
(or this one, restarted) reclaims the job. A runner crash releases the job for a
retry; the attempt count bounds retries (``max_attempts``), after which the job
fails with api_error.

SIGTERM/SIGINT: stop claiming, finish the job at hand, exit. A second signal
releases the job at once and exits.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import CANCELLED_ERROR, LtxError, StoreBusyError
from ltxserve.jobs.contract.requests import URI_FIELDS
from ltxserve.jobs.lifecycle.doorbell import LEAD_SECONDS
from ltxserve.jobs.lifecycle.manager import JobManager, Output, open_manager
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import Job
from ltxserve.logs import job_id_var, key_id_var
from ltxserve.metrics.instruments import observe_job
from ltxserve.runner import (
    Done,
    Failed,
    LoadFailed,
    Progress,
    Ready,
    RunJob,
    Stop,
    Stopped,
    runner_main,
)
from ltxserve.storage import open_blobs
from ltxserve.storage.base import StorageError
from ltxserve.storage.retry import RetryingBlobs

log = logging.getLogger("ltxserve.worker")


class Flag:
    """A one-way switch that a signal handler may throw.

    Not a ``threading.Event``: ``Event.set`` takes a lock, and a second signal that
    lands while the main thread is inside ``set`` (or inside the loop's own
    ``is_set``/``wait``) runs the handler on that same thread, which then waits for
    the lock it already holds, forever. A plain attribute write takes no lock; every
    loop that watches a flag polls it in short slices anyway.
    """

    __slots__ = ("_on",)

    def __init__(self) -> None:
        self._on = False

    def set(self) -> None:
        self._on = True

    def is_set(self) -> bool:
        return self._on


class RunnerCrashed(Exception):
    """The runner process died or stopped answering; not the job's fault."""


class RunnerStartFailed(Exception):
    """The engine could not be loaded; the worker cannot serve any job."""

    def __init__(self, message: str, *, config: bool = False) -> None:
        super().__init__(message)
        self.config = config  # a configuration error: restarting cannot help


class Runner:
    """Handle on the runner child process."""

    def __init__(self, engine_name: str, settings: Settings) -> None:
        self.engine_name = engine_name
        self.settings = settings  # the engine is built with them, in the child
        self.proc: Any = None
        self.conn: Connection | None = None
        self.engine = ""

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=runner_main, args=(child, self.engine_name, self.settings), daemon=True
        )
        self.proc.start()
        child.close()
        self.conn = parent
        msg = self._recv(timeout=600)
        if isinstance(msg, LoadFailed):
            raise RunnerStartFailed(msg.message, config=msg.config)
        assert isinstance(msg, Ready)
        self.engine = msg.engine

    def _recv(self, timeout: float) -> Any:
        assert self.conn is not None
        try:
            if not self.conn.poll(timeout):
                return None
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise RunnerCrashed(f"runner exited with code {self.proc.exitcode}") from exc

    def send(self, msg: RunJob | Stop) -> None:
        assert self.conn is not None
        try:
            self.conn.send(msg)
        except OSError as exc:
            raise RunnerCrashed("runner pipe closed") from exc

    def recv(self, timeout: float) -> Any:
        return self._recv(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None


class Worker:
    def __init__(
        self,
        settings: Settings,
        engine_name: str = "auto",
        *,
        manager: JobManager | None = None,
        stopping: Flag | None = None,
        abort: Flag | None = None,
    ) -> None:
        self.settings = settings
        if manager is None:
            # inputs and results go through retries: an S3 outage delays a job, up to
            # storage_retry_seconds, rather than failing or losing it (storage/retry.py)
            blobs = RetryingBlobs(open_blobs(settings), settings.storage_retry_seconds)
            manager = open_manager(settings, blobs=blobs)
        self.manager = manager
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.runner = Runner(engine_name if engine_name != "auto" else settings.engine, settings)
        # set from signal handlers (see Flag); shared by the slots of one process
        self.stopping = stopping or Flag()
        self.abort = abort or Flag()
        self.claimed_at = time.monotonic()  # of the job at hand (job duration metric)
        self.next_job: Job | None = None  # claimed with the last one's completion
        # where the engine writes each job's outputs; named by pid like a job's cache
        self.out_dir = settings.work_dir / f"{os.getpid()}-out-{uuid.uuid4().hex[:8]}"

    # -- lifecycle ----------------------------------------------------------
    def install_signal_handlers(self) -> None:
        install_stop_handlers(self.stopping, self.abort)

    def run(self, *, clean: bool = True) -> None:
        """Serve jobs until stopped. ``clean``: first remove the job directories of
        dead workers and of this pid (clean_workdirs); a process running several
        workers (worker_slots.py) does that once, before any of them starts."""
        if clean:
            clean_workdirs(self.settings.work_dir)
        self.runner.start()
        log.info("worker %s ready with engine %s", self.owner, self.runner.engine)
        try:
            while not self.stopping.is_set():
                job, self.next_job = self.next_job, None
                if job is None:
                    try:
                        job = self.manager.claim(self.owner)
                    except StoreBusyError:  # saturated for now: look again after a pause
                        job = None
                if job is None:
                    self._idle()
                    continue
                self.process(job)
            if (left := self.next_job) is not None:  # claimed as the stop came: give it back
                self.next_job = None
                self._stored(lambda: self.manager.release(left, self.owner))
        finally:
            self.runner.stop()
            shutil.rmtree(self.out_dir, ignore_errors=True)
            self.manager.close()

    def _idle(self) -> None:
        """Wait for a ring or the poll interval, in short slices so a stop is prompt."""
        deadline = time.monotonic() + self.settings.poll_interval
        while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.manager.wait_for_work(min(left, 0.25)):
                return

    # -- one job --------------------------------------------------------------
    def process(self, job: Job) -> None:
        ids = job_id_var.set(job.id), key_id_var.set(job.api_key_id)  # on every log record
        log.info("job %s (%s) claimed, attempt %d", job.id, job.endpoint, job.attempts)
        self.claimed_at = time.monotonic()
        # The job's local cache of its inputs (copies from the blob store, fetches),
        # removed when the job ends, and by the next start of a worker if this one is
        # killed (clean_workdirs). Made only for a job that has inputs; the name is this
        # claim's own (pid, job, attempt). The engine writes into the worker's output
        # directory, emptied after each job: making and removing directories per job
        # cost more than a no-op job's whole round trip on a busy disk (bench/README.md).
        workdir = self.settings.work_dir / f"{os.getpid()}-{job.id}-{job.attempts}"
        retrying = self.manager.blobs if isinstance(self.manager.blobs, RetryingBlobs) else None
        if retrying is not None:  # renew the lease while a blob read or write is retried
            retrying.on_wait = lambda: self._beat(job, None)
        try:
            try:
                if any(job.request.get(field) for field in URI_FIELDS):
                    self.manager.hand_over()  # fetches can take a while
                # large data URIs were stored as blobs at submit (jobs/payloads.py)
                job = self.manager.restore(job)
                inputs = self._resolve_inputs(job, workdir)
                # a content policy that reads inputs (docs/limits.md): filtered -> failed
                self.manager.screen_inputs(job, {k: Path(v) for k, v in inputs.items()})
            except StoreBusyError:  # the store went away meanwhile: not the job's fault
                self._stored(lambda: self.manager.release(job, self.owner))
                return
            except LtxError as exc:
                self._finish_failed(job, exc.type, exc.message)
                return
            except StorageError as exc:  # after storage_retry_seconds of retries
                self._finish_failed(job, "api_error", f"the job's inputs could not be read: {exc}")
                return
            self._run(job, inputs, self.out_dir)  # the runner makes it (engines.dispatch)
        finally:
            if retrying is not None:
                retrying.on_wait = None
            if workdir.exists():
                shutil.rmtree(workdir, ignore_errors=True)
            empty_dir(self.out_dir)  # what the blob store did not take (a failed job's)
            job_id_var.reset(ids[0])
            key_id_var.reset(ids[1])

    def _resolve_inputs(self, job: Job, workdir: Path) -> dict[str, str]:
        from ltxserve.inputs import resolve_inputs

        paths = resolve_inputs(
            job.request,
            workdir / "in",
            settings=self.settings,
            blobs=self.manager.blobs,
            api_key_id=job.api_key_id,
            endpoint=job.endpoint,
            uploads=self.manager.uploads.usable,
            keepalive=lambda: self.manager.heartbeat(job, self.owner),
        )
        return {k: str(v) for k, v in paths.items()}

    def _run(self, job: Job, inputs: dict[str, str], out_dir: Path) -> None:
        # Inputs that took a while (fetches, large copies) leave time for a cancel: look
        # before the engine starts (one lease renewal) rather than at its first report.
        if time.monotonic() - self.claimed_at > self.settings.progress_seconds and not self._beat(
            job, None
        ):
            log.info("job %s: lost before it started (%s); not running it", job.id, self._lost(job))
            return
        try:
            self.runner.send(RunJob(job.id, job.endpoint, job.request, inputs, str(out_dir)))
            progress: float | None = None
            written: float | None = None  # the progress the store holds
            next_beat = time.monotonic() + self.settings.heartbeat_seconds
            # Progress reaches pollers between heartbeats too, at most every
            # progress_seconds and only when it moved: one small UPDATE, the same as a
            # heartbeat, never more often than a client could see it.
            next_progress = time.monotonic() + self.settings.progress_seconds
            tick = min(0.5, self.settings.heartbeat_seconds, self.settings.progress_seconds)
            while True:
                if (left := self._lead_left()) <= 0:  # not a short job
                    self.manager.hand_over()  # (nothing more once handed over)
                msg = self.runner.recv(timeout=min(tick, left) if left > 0 else tick)
                if isinstance(msg, Progress):
                    progress = msg.fraction
                elif isinstance(msg, Done):
                    self._finish_done(job, msg)
                    return
                elif isinstance(msg, Failed):
                    self._finish_failed(job, msg.type, msg.message)
                    return
                if self.abort.is_set():
                    raise RunnerCrashed("worker aborted by signal")
                now = time.monotonic()
                if now >= next_beat or (progress != written and now >= next_progress):
                    next_beat = now + self.settings.heartbeat_seconds
                    next_progress = now + self.settings.progress_seconds
                    written = progress
                    if not self._beat(job, progress):
                        why = self._lost(job)
                        log.warning("job %s: lease lost; abandoning it (%s)", job.id, why)
                        self._stop_job(job)
                        return
        except RunnerCrashed as exc:
            log.error("job %s: %s; releasing it for another attempt", job.id, exc)
            if job.attempts >= self.settings.max_attempts:
                self._finish_failed(
                    job, "api_error", f"generation crashed {job.attempts} times and was given up"
                )
            else:
                self._stored(lambda: self.manager.release(job, self.owner))
            if not self.stopping.is_set():
                self._restart_runner()

    def _lead_left(self) -> float:
        """How much longer the job at hand counts as short: a worker that leads the
        idle ones keeps the lead until then (LEAD_SECONDS; doorbell.py)."""
        return self.claimed_at + LEAD_SECONDS - time.monotonic()

    def _beat(self, job: Job, progress: float | None) -> bool:
        """Renew the lease; a saturated store is not a lost lease (the next beat retries)."""
        try:
            return self.manager.heartbeat(job, self.owner, progress)
        except StoreBusyError:
            log.warning("job %s: store busy; lease renewal deferred", job.id)
            return True

    def _lost(self, job: Job) -> str:
        """Why a lease renewal found the job no longer ours, for the log: a cancel
        (DELETE), another end by the API (v1 abandon), or a lease taken over."""
        try:
            now = self.manager.job(job.id)
        except StoreBusyError:
            now = None
        if now is not None and now.error_type == CANCELLED_ERROR:
            return "cancelled"
        if now is not None and now.terminal:
            return f"{now.status} elsewhere"
        return "taken over"

    def _stop_job(self, job: Job) -> None:
        """Have the runner drop ``job``; restart the runner only if it will not.

        The runner unwinds at the engine's next progress report and stays loaded
        (no weight reload for ltx). One that does not answer within
        ``stop_grace_seconds`` (stuck in a long step, or crashed) is restarted.
        """
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        try:
            self.runner.send(Stop(job.id))
            while (left := deadline - time.monotonic()) > 0 and not self.abort.is_set():
                msg = self.runner.recv(timeout=min(0.5, left))
                if isinstance(msg, Stopped | Done | Failed) and msg.job_id == job.id:
                    log.info("job %s: stopped in the runner, which stays loaded", job.id)
                    return
        except RunnerCrashed as exc:
            log.warning("job %s: runner gone while stopping it: %s", job.id, exc)
        if not self.stopping.is_set():
            log.warning("job %s: restarting the runner to stop it", job.id)
            self._restart_runner()

    def _restart_runner(self) -> None:
        self.runner.stop()
        self.runner.start()

    def _finish_done(self, job: Job, msg: Done) -> None:
        outputs: dict[str, Output] = {}
        for label, (path, content_type) in msg.outputs.items():
            # The engine rides along with each output: the status object shows it
            # (api/status.py), and no reader of the other fields needs to know.
            info: dict[str, Any] = {"engine": self.runner.engine}
            # the status object's `duration` (docs/api.md), read before the blob
            # store takes the file away
            seconds = video_seconds(Path(path)) if content_type == "video/mp4" else None
            if seconds is not None:
                info["duration"] = seconds
            if msg.metadata:  # how the engine made it (seed, model...): for operators
                info["metadata"] = msg.metadata
            outputs[label] = Output(Path(path), content_type, info)
        if self._lead_left() <= 0:
            self.manager.hand_over()  # large outputs take a while to store
        try:
            result = self.manager.store_outputs(job, outputs)
        except StorageError as exc:  # after storage_retry_seconds of retries
            self._finish_failed(job, "api_error", f"the result could not be stored: {exc}")
            return
        # only the database write is waited out (the blob store has taken the files)
        done = self._stored(lambda: self._complete(job, result))
        if done:
            self._observe(job, JobStatus.COMPLETED)
            log.info("job %s completed", job.id)
        else:
            log.warning("job %s: finished after losing its lease; result dropped", job.id)

    def _complete(self, job: Job, result: dict[str, Any]) -> bool:
        """Record the result and, unless the worker is stopping, claim the next job in
        the same write (``next_job``, run by the loop): one round trip on PostgreSQL."""
        if self.stopping.is_set():
            return self.manager.complete(job, self.owner, result)
        done, self.next_job = self.manager.complete_and_claim(job, self.owner, result)
        return done

    def _finish_failed(self, job: Job, type_: str, message: str) -> None:
        if self._stored(lambda: self.manager.fail(job, self.owner, type_, message)):
            self._observe(job, JobStatus.FAILED)
            log.info("job %s failed: %s: %s", job.id, type_, message)

    def _stored(self, write: Callable[[], bool]) -> bool:
        """Run a store write that ends a job, waiting out a store that is away
        (PostgreSQL restarting, pool saturated) instead of dying with the job in hand.

        The write lands once the store is back; if the lease ran out meanwhile and
        another worker took the job, the write's own owner check refuses it (False).
        Only a second signal gives up (False), leaving the job to its lease.
        """
        pause = 0.25
        while True:
            try:
                return write()
            except StoreBusyError:
                if self.abort.is_set():
                    return False
                log.warning("job store unavailable; retrying in %.1f s", pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _observe(self, job: Job, status: JobStatus) -> None:
        """Job duration and queue wait for /metrics (docs/operations.md)."""
        observe_job(job, self.runner.engine, status.value, time.monotonic() - self.claimed_at)


def install_stop_handlers(stopping: Flag, abort: Flag) -> None:
    """SIGTERM/SIGINT: the first stops claiming, the second releases the jobs at hand.

    Logs at most twice whatever arrives: a signal can land inside this handler's own
    log call, and a handler that logged every time nested once per signal of a burst
    until the stack overflowed.
    """

    def handler(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("signal %d: stopping after the current job", signum)
        elif not abort.is_set():
            abort.set()
            log.info("signal %d again: releasing the current job", signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def clean_workdirs(root: Path) -> None:
    """Remove job directories left by workers that died (SIGKILL, machine crash): each
    is named ``<pid>-...`` by the worker that made it, and only dead pids' go. Called at
    a worker's start, when no directory of its own pid can be in use (a container's
    restarted worker often gets its predecessor's pid)."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        pid = entry.name.split("-", 1)[0]
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def empty_dir(path: Path) -> None:
    """Remove everything in ``path`` (absent: nothing to do), best effort."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def video_seconds(path: Path) -> float | None:
    """The length of an output video as its file says (frames / fps), to the millisecond."""
    from ltxserve.media.probe import probe

    try:
        video = probe(path, label="output").video
    except Exception:  # noqa: BLE001 - an unreadable length must not fail a finished job
        return None
    return None if video is None or not video.fps else round(float(video.frames / video.fps), 3)


def run_worker(
    settings: Settings, engine_name: str = "auto", metrics_port: int | None = None
) -> None:
    if metrics_port is not None:  # a worker on a machine of its own (docs/operations.md)
        from prometheus_client import start_http_server

        from ltxserve.metrics.multiproc import scrape_registry

        start_http_server(metrics_port, registry=scrape_registry())
        log.info("worker metrics on port %d", metrics_port)
    if settings.worker_concurrency > 1:  # one process, several job slots
        from ltxserve.worker_slots import run_slots

        run_slots(settings, engine_name, settings.worker_concurrency)
        return
    worker = Worker(settings, engine_name)
    worker.install_signal_handlers()
    worker.run()
