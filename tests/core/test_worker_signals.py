"""A worker stops on SIGTERM however many arrive and however fast.

Two regressions, each of which left about one worker in three running after a burst:
- the handler called ``threading.Event.set``, which takes a lock; a second SIGTERM
  landing inside ``set`` ran the handler again on the same thread, which then waited
  for its own lock forever;
- the handler logged every signal; a signal landing inside the log call nested the
  handler again, once per signal of the burst, until the stack overflowed and the
  CLI spent minutes rendering the traceback.
Seen as orphaned workers after ``serve`` was SIGKILLed (each worker then gets SIGTERM
from the kernel, and the supervisor's own may follow).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support import FAST_ENV

TRIALS = 6


def start_worker(data_dir: Path) -> subprocess.Popen[bytes]:
    """A standalone worker, its log in a file (a pipe nobody drains would fill up with
    one log line per signal and block the worker for another reason)."""
    env = {**os.environ, **FAST_ENV, "LTXSERVE_DATA_DIR": str(data_dir)}
    log_path = data_dir / "worker.log"
    log_path.unlink(missing_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltxserve.cli",
            "worker",
            "--data-dir",
            str(data_dir),
            "--engine",
            "minimal",
            "--log-level",
            "info",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    deadline = time.monotonic() + 60
    while b" ready " not in log_path.read_bytes() and time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text(errors="replace")
        time.sleep(0.05)
    assert b" ready " in log_path.read_bytes(), log_path.read_text(errors="replace")
    return proc


def test_a_burst_of_sigterms_stops_the_worker(tmp_path: Path) -> None:
    hung = 0
    for _ in range(TRIALS):
        proc = start_worker(tmp_path)
        end = time.monotonic() + 0.3
        while time.monotonic() < end and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            hung += 1
            proc.kill()
            proc.wait()
    assert hung == 0, f"{hung} of {TRIALS} workers never exited after a burst of SIGTERMs"
