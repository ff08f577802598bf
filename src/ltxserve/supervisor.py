"""Keeps ``serve``'s worker subprocesses alive: a worker that dies is started again.

Workers are plain ``ltxserve worker`` processes, so a test (or an operator) can
kill one with SIGKILL and watch the job it held be reclaimed once its lease runs out.
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
from pathlib import Path

log = logging.getLogger("ltxserve.supervisor")


def _term_with_parent() -> None:
    """In the child before exec: SIGTERM when `serve` dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor(threading.Thread):
    def __init__(self, count: int, data_dir: Path, engine: str, restart_delay: float = 1.0) -> None:
        super().__init__(name="ltxserve-supervisor", daemon=True)
        self.count = count
        self.data_dir = data_dir
        self.engine = engine
        self.restart_delay = restart_delay
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # no spawn may slip in after stop() took its list

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "ltxserve.cli",
            "worker",
            "--data-dir",
            str(self.data_dir),
            "--engine",
            self.engine,
        ]
        proc = subprocess.Popen(cmd, env=dict(os.environ), preexec_fn=_term_with_parent)
        log.info("started worker pid %d", proc.pid)
        return proc

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.poll() is None]

    def run(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                for i, proc in enumerate(self.procs):
                    if self.stopping.is_set():
                        break
                    if proc is None or proc.poll() is not None:
                        if proc is not None:
                            log.warning(
                                "worker pid %d exited with %s; restarting",
                                proc.pid,
                                proc.returncode,
                            )
                        self.procs[i] = self._spawn()
            self.stopping.wait(self.restart_delay)

    def stop(self, grace: float = 10.0) -> None:
        with self.lock:
            self.stopping.set()
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
