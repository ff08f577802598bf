"""Keeps ``serve``'s worker subprocesses alive: a worker that dies is started again.

Workers are plain ``ltxserve worker`` processes, so a test (or an operator) can
kill one with SIGKILL and watch the job it held be reclaimed once its lease runs out.

A worker that keeps dying soon after its start is restarted with exponential
backoff (``restart_delay`` doubling up to ``max_restart_delay``), and the log says
so once, not on every restart. A worker that exits with ``EX_CONFIG`` stopped on a
configuration error that no restart can mend: the supervisor starts no more
workers and tells ``serve`` through ``on_fatal``, which stops.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ltxserve.config import EX_CONFIG
from ltxserve.metrics.multiproc import mark_dead

log = logging.getLogger("ltxserve.supervisor")


def _term_with_parent() -> None:
    """In the child before exec: SIGTERM when `serve` dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class _Slot:
    """One worker position: its process and how it has been faring."""

    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0  # consecutive deaths within `healthy_after` of the start
    not_before: float = 0.0  # no restart before this (monotonic)
    told: bool = False  # the log already said this slot is backing off


class Supervisor(threading.Thread):
    def __init__(
        self,
        count: int,
        data_dir: Path,
        engine: str,
        restart_delay: float = 1.0,
        *,
        max_restart_delay: float = 60.0,
        healthy_after: float = 30.0,
        on_fatal: Callable[[], None] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name="ltxserve-supervisor", daemon=True)
        self.count = count
        self.data_dir = data_dir
        self.engine = engine
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.healthy_after = healthy_after
        self.on_fatal = on_fatal
        self.command = (
            list(command)
            if command is not None
            else [
                sys.executable,
                "-m",
                "ltxserve.cli",
                "worker",
                "--data-dir",
                str(data_dir),
                "--engine",
                engine,
            ]
        )
        self.slots = [_Slot() for _ in range(count)]
        self.stopping = threading.Event()
        self.fatal = False
        self.lock = threading.Lock()  # no spawn may slip in after stop() took its list

    @property
    def procs(self) -> list[subprocess.Popen[bytes] | None]:
        return [s.proc for s in self.slots]

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.command, env=dict(os.environ), preexec_fn=_term_with_parent)
        log.info("started worker pid %d", proc.pid)
        return proc

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.poll() is None]

    def _reap(self, slot: _Slot, now: float) -> bool:
        """Note a dead worker's exit; False when it was a configuration error."""
        assert slot.proc is not None
        code = slot.proc.returncode
        mark_dead(slot.proc.pid)  # its live metric gauges go (docs/operations.md)
        if code == EX_CONFIG:
            return False
        if now - slot.started < self.healthy_after:
            slot.failures += 1
        else:
            slot.failures, slot.told = 1, False
        delay = min(self.max_restart_delay, self.restart_delay * 2 ** (slot.failures - 1))
        slot.not_before = now + delay
        if slot.failures >= 2 and not slot.told:
            slot.told = True
            log.warning(
                "worker keeps exiting (pid %d, status %s); restarting it with backoff up to %.0f s",
                slot.proc.pid,
                code,
                self.max_restart_delay,
            )
        elif slot.failures < 2:
            log.warning("worker pid %d exited with %s; restarting", slot.proc.pid, code)
        slot.proc = None
        return True

    def run(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                now = time.monotonic()
                for slot in self.slots:
                    if self.stopping.is_set():
                        break
                    if slot.proc is not None and slot.proc.poll() is not None:
                        if not self._reap(slot, now):
                            self.fatal = True
                            self.stopping.set()
                            break
                    if slot.proc is None and now >= slot.not_before:
                        slot.proc = self._spawn()
                        slot.started = now
                    elif (
                        slot.proc is not None
                        and slot.failures
                        and (now - slot.started >= self.healthy_after)
                    ):
                        slot.failures, slot.told = 0, False  # it has settled
            if self.fatal:
                self._stop_all(grace=10.0)
                if self.on_fatal is not None:
                    self.on_fatal()
                return
            self.stopping.wait(min(self.restart_delay, 0.5))

    def stop(self, grace: float = 10.0) -> None:
        with self.lock:
            self.stopping.set()
        self._stop_all(grace)

    def _stop_all(self, grace: float) -> None:
        """SIGTERM every live worker (it finishes its job), SIGKILL after ``grace``."""
        with self.lock:
            live = [p for p in self.procs if p is not None and p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
