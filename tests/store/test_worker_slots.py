"""`ltxserve worker --concurrency N`: one process runs N jobs at once (worker_slots.py).

On every store: the slots really run at the same time (N jobs processing together,
N runner children of one process), a SIGTERM lets every slot finish its job at hand,
and a SIGKILL of the process leaves each slot's job to its own lease, which the next
worker reclaims. A setting out of range is one line and exit status 78. A slot
whose engine cannot start stops the others, and the process ends with its error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import FAST_ENV, Server

SLOTS = 3
EP = "text-to-video"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    databases = pg_database(label="slots")
    url = next(databases)
    try:
        yield {"LTXSERVE_DATABASE_URL": url, "LTXSERVE_SECRET": "slots-test-secret"}
    finally:
        databases.close()


def start_slots(srv: Server, slots: int) -> tuple[subprocess.Popen[bytes], Path]:
    proc, log = srv.spawn_worker(None, "--concurrency", str(slots))
    deadline = time.monotonic() + 90
    while log.read_text(errors="replace").count("ready with engine") < slots:
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)
    return proc, log


def runners(proc: subprocess.Popen[bytes]) -> int:
    """The runner children of ``proc`` (multiprocessing's spawn_main)."""
    out = subprocess.run(
        ["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], capture_output=True, text=True
    )
    return len(out.stdout.split())


def statuses(client: httpx.Client, ids: list[str]) -> list[str]:
    return [client.get(f"/v2/{EP}/{job_id}").json()["status"] for job_id in ids]


def wait_all(client: httpx.Client, ids: list[str], want: str, timeout: float) -> float:
    """Seconds until every job of ``ids`` is ``want`` at once."""
    start = time.monotonic()
    while (seen := statuses(client, ids)) != [want] * len(ids):
        assert time.monotonic() - start < timeout, seen
        time.sleep(0.05)
    return time.monotonic() - start


def slow_key(srv: Server, seconds: float) -> str:
    """A client-testing key whose jobs stay processing ``seconds`` (docs/simulate.md)."""
    out = srv.cli("keys", "create", "--name", "slow", "--simulate", f"processing={seconds}")
    return out.strip().splitlines()[-1]


def submit_together(client: httpx.Client) -> list[str]:
    """SLOTS jobs, seen processing all at once: one slot would leave the others pending."""
    ids = [client.post(f"/v2/{EP}", json=T2V).json()["id"] for _ in range(SLOTS)]
    together = wait_all(client, ids, "processing", timeout=2.5)
    print(f"{SLOTS} jobs processing together after {together:.2f} s")
    return ids


def test_slots_run_together_and_finish_on_sigterm(
    make_server: Callable[..., Server], store_env: dict[str, str]
) -> None:
    srv = make_server(env=store_env, workers=0)
    key = slow_key(srv, 3)
    proc, log = start_slots(srv, SLOTS)
    try:
        assert runners(proc) == SLOTS, log.read_text()
        with srv.client(key) as client:
            ids = submit_together(client)
            proc.send_signal(signal.SIGTERM)  # every slot finishes its job, then exits
            assert proc.wait(30) == 0, log.read_text()
            assert statuses(client, ids) == ["completed"] * SLOTS, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert log.read_text().count("stopping after the current job") == 1, log.read_text()


def test_killed_slots_leave_each_job_to_its_lease(
    make_server: Callable[..., Server], store_env: dict[str, str]
) -> None:
    srv = make_server(env=store_env, workers=0)
    key = slow_key(srv, 1)
    proc, log = start_slots(srv, SLOTS)
    second = None
    try:
        with srv.client(key) as client:
            ids = submit_together(client)
            proc.kill()  # no slot releases anything: the leases must run out
            proc.wait(10)
            second, log2 = start_slots(srv, 2)
            lease = float(FAST_ENV["LTXSERVE_LEASE_SECONDS"])
            took = wait_all(client, ids, "completed", timeout=lease + 20)
            print(f"the killed process's {SLOTS} jobs completed {took:.1f} s after")
            jobs = [client.get(f"/v2/{EP}/{job_id}").json() for job_id in ids]
            assert all(j["status"] == "completed" for j in jobs), (jobs, log2.read_text())
    finally:
        for p in (proc, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(30)


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_concurrency_out_of_range_is_one_line(tmp_path: Path, value: str) -> None:
    env = {**os.environ, **FAST_ENV, "LTXSERVE_WORKER_CONCURRENCY": value}
    env["LTXSERVE_DATA_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", "worker", "--engine", "minimal"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 78, out.stderr
    assert "LTXSERVE_WORKER_CONCURRENCY" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_a_slot_that_cannot_start_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first slot's engine fails to load: the other slots stop (after their jobs at
    hand: here none), and run_slots raises that error once every slot has ended."""
    from ltxserve import worker_slots
    from ltxserve.config import Settings
    from ltxserve.worker import RunnerStartFailed, Worker

    stopped: list[bool] = []
    made = iter(range(SLOTS))

    class Slot(Worker):
        def run(self, *, clean: bool = True) -> None:
            assert not clean  # the process cleaned once, before any slot started
            try:
                if next(made) == 0:
                    raise RunnerStartFailed("no engine here")
                deadline = time.monotonic() + 10
                while not self.stopping.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
                stopped.append(self.stopping.is_set())
            finally:
                self.manager.close()

    monkeypatch.setattr(worker_slots, "Worker", Slot)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(RunnerStartFailed, match="no engine here"):
            worker_slots.run_slots(Settings(data_dir=tmp_path), "minimal", SLOTS)
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert stopped == [True] * (SLOTS - 1)
