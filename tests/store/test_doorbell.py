"""The doorbell on each store: a ring wakes a waiting listener at once, silence times out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ltxserve.jobs.lifecycle.doorbell import Silent
from ltxserve.jobs.store.base import JobStore


def test_ring_wakes_a_waiting_listener(store: JobStore, tmp_path: Path) -> None:
    data = tmp_path / "data"
    ringer = store.doorbell(data)
    ringer.ring()  # nobody listening yet: dropped, no error
    listener = store.doorbell(data)
    try:
        assert not isinstance(listener, Silent)
        listener.wait(0.05)  # set up (open the FIFO / LISTEN)
        started = time.monotonic()
        assert listener.wait(0.3) is False
        assert time.monotonic() - started >= 0.25

        threading.Timer(0.3, ringer.ring).start()
        started = time.monotonic()
        assert listener.wait(10) is True
        assert 0.25 <= time.monotonic() - started < 2.0

        for _ in range(3):  # several rings wake it (at least) once, then it is quiet again
            ringer.ring()
        assert listener.wait(2) is True
        quiet = [listener.wait(0.3) for _ in range(3)]
        assert quiet[-1] is False and quiet.count(True) <= 1  # a late NOTIFY may wake it once
    finally:
        listener.close()
        ringer.close()
