"""Durability: killed workers, restarted servers, lost leases, retention."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import httpx

from ltxserve.config import Settings
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.sql import Job
from tests.core.test_submit import T2V
from tests.support import Server, assert_error, wait_terminal

LONG = {**T2V, "model": "ltx-2-3-pro", "resolution": "1920x1080", "duration": 10, "fps": 25}


def wait_status(
    c: httpx.Client, endpoint: str, job_id: str, status: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.get(f"/v2/{endpoint}/{job_id}").json()["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never {status}")


def stored_job(srv: Server, job_id: str) -> Job | None:
    """The job's row as the store holds it (the API hides a job past retention even
    before the sweeper deletes it, so only the store tells the two apart)."""
    store = open_store(Settings(data_dir=srv.data_dir))
    try:
        return store.get(job_id)
    finally:
        store.engine.dispose()


def runner_pids(worker_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_sigkill_worker_mid_job_job_still_completes(make_server: Callable[..., Server]) -> None:
    srv = make_server(env={"LTXSERVE_LEASE_SECONDS": "2"})
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=LONG).json()
        wait_status(c, "text-to-video", job["id"], "processing")
        (worker,) = srv.worker_pids()
        children = runner_pids(worker)
        os.kill(worker, signal.SIGKILL)
        time.sleep(1)
        for pid in children:  # the runner dies with its worker (no orphan generating)
            assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read()
        body = wait_terminal(c, "text-to-video", job["id"], timeout=120)
    assert body["status"] == "completed", body
    assert httpx.get(body["result"]["video_url"]).status_code == 200


def test_lost_job_fails_after_max_attempts(make_server: Callable[..., Server]) -> None:
    """The claim's part: the restarted worker finds the job lost on its last attempt
    and fails it instead of running it again. The sweeper, which would fail it too,
    is kept out of the way (it runs at start-up only)."""
    srv = make_server(
        env={
            "LTXSERVE_LEASE_SECONDS": "2",
            "LTXSERVE_MAX_ATTEMPTS": "1",
            "LTXSERVE_SWEEP_INTERVAL": "3600",
        }
    )
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=LONG).json()
        wait_status(c, "text-to-video", job["id"], "processing")
        os.kill(srv.worker_pids()[0], signal.SIGKILL)
        body = wait_terminal(c, "text-to-video", job["id"], timeout=60)
    assert body["status"] == "failed"
    assert body["error"]["type"] == "api_error"
    assert "lost" in body["error"]["message"]


def test_lost_job_fails_with_no_worker_left(make_server: Callable[..., Server]) -> None:
    """The sweeper's part: the only worker dies on the job's last attempt and none is
    left to reclaim it (and fail it there), so the API process must fail it."""
    srv = make_server(env={"LTXSERVE_LEASE_SECONDS": "2", "LTXSERVE_MAX_ATTEMPTS": "1"}, workers=0)
    worker, _log = srv.spawn_worker()
    try:
        with srv.client() as c:
            job = c.post("/v2/text-to-video", json=LONG).json()
            wait_status(c, "text-to-video", job["id"], "processing")
            worker.kill()
            worker.wait(10)
            body = wait_terminal(c, "text-to-video", job["id"], timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert body["status"] == "failed", body
    assert body["error"]["type"] == "api_error" and "lost" in body["error"]["message"], body


def test_restart_keeps_every_acknowledged_job(make_server: Callable[..., Server]) -> None:
    srv = make_server(workers=0)
    with srv.client() as c:
        ids = [c.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(5)]
    srv.stop(signal.SIGKILL)  # no graceful anything
    again = make_server(workers=1, data_dir=srv.data_dir)
    again.api_key = srv.api_key
    with again.client() as c:
        for job_id in ids:
            assert wait_terminal(c, "text-to-video", job_id)["status"] == "completed"


def test_graceful_worker_stop_finishes_the_job(make_server: Callable[..., Server]) -> None:
    """SIGTERM mid-job: the worker finishes that job in its first attempt, claims no
    other, and exits 0. The worker is the test's own child (not `serve`'s), so no
    supervisor restarts it and its exit status is ours to read: a worker killed by
    the signal and its job reclaimed after the lease would not pass."""
    srv = make_server(workers=0)
    worker, log = srv.spawn_worker()
    try:
        with srv.client() as c:
            job = c.post("/v2/text-to-video", json={**T2V, "duration": 4}).json()
            wait_status(c, "text-to-video", job["id"], "processing")
            queued = c.post("/v2/text-to-video", json=T2V).json()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0, log.read_text()
            body = c.get(f"/v2/text-to-video/{job['id']}").json()
            assert body["status"] == "completed", body
            # stopped claiming: the job submitted after the signal is still waiting
            assert c.get(f"/v2/text-to-video/{queued['id']}").json()["status"] == "pending"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    done = stored_job(srv, job["id"])
    assert done is not None and done.attempts == 1, done


def test_retention_deletes_row_and_files(make_server: Callable[..., Server]) -> None:
    srv = make_server(env={"LTXSERVE_RETENTION_SECONDS": "3", "LTXSERVE_SWEEP_INTERVAL": "0.5"})
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=T2V).json()
        body = wait_terminal(c, "text-to-video", job["id"])
        url = body["result"]["video_url"]
        assert httpx.get(url).status_code == 200
        job_dir = srv.data_dir / "blobs" / "jobs" / job["id"]
        assert job_dir.is_dir()
        time.sleep(4.5)
        assert_error(c.get(f"/v2/text-to-video/{job['id']}"), 404, "not_found_error")
        assert not job_dir.exists()
        assert stored_job(srv, job["id"]) is None  # the row is deleted, not only hidden
        assert_error(httpx.get(url), 403, "authentication_error", "expired")


def test_workers_die_with_serve(make_server: Callable[..., Server]) -> None:
    """Even a SIGKILLed `serve` (no cleanup runs) leaves no worker behind."""
    srv = make_server(workers=2)
    deadline = time.monotonic() + 30
    while len(pids := srv.worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pids) == 2
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGKILL)  # the serve process alone, not its group
    srv.proc.wait(10)
    deadline = time.monotonic() + 20
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)


def test_submission_wakes_an_idle_worker(make_server: Callable[..., Server]) -> None:
    """With a 30 s poll interval, only the doorbell can get jobs claimed within seconds."""
    srv = make_server(env={"LTXSERVE_POLL_INTERVAL": "30"})
    with srv.client() as c:
        time.sleep(0.5)  # let the worker go idle
        started = time.monotonic()
        for _ in range(3):
            job = c.post("/v2/text-to-video", json=T2V).json()
            assert wait_terminal(c, "text-to-video", job["id"], timeout=60)["status"] == "completed"
        assert time.monotonic() - started < 10
    t0 = time.monotonic()
    srv.stop()  # an idle worker still stops promptly
    assert time.monotonic() - t0 < 10
