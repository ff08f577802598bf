"""Cancel (``DELETE /v2/{endpoint}/{id}``) over real HTTP, with a real worker and runner.

A pending job is never claimed; a running preview job stops at the engine's next
progress report, its runner stays up (same pid) and the worker takes the next job.
The ltx engine's twin is tests/engines/test_ltx_cancel.py. Each test that cancels a
running job prints the time from the DELETE to the worker taking the next job (a
"cancel figures" line: run with ``-rP`` or ``-s`` to see it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import jsonschema
import pytest

from tests.core.test_lifecycle import LONG, runner_pids, stored_job, wait_status
from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error, assert_schema, wait_terminal

CANCELLED = "cancelled_error"


def wait_progress(c: httpx.Client, endpoint: str, job_id: str, timeout: float = 120) -> float:
    """Block until the running job reports progress above 0 (the engine is generating)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = c.get(f"/v2/{endpoint}/{job_id}").json()
        assert body["status"] in ("pending", "processing"), body
        if body.get("progress", 0) > 0 and body["status"] == "processing":
            return float(body["progress"])
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never reported progress")


def cancel_running(
    srv: Server, c: httpx.Client, endpoint: str, long_body: dict[str, object]
) -> tuple[float, dict[str, object]]:
    """Cancel a running job while another waits behind it: (seconds from the DELETE to
    the worker taking the next job, the cancelled job's status object). Asserts the
    runner was not restarted and the next job completes."""
    (worker,) = srv.worker_pids()
    deadline = time.monotonic() + 60
    while "ready with engine" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    runners = runner_pids(worker)
    assert runners
    running = c.post(f"/v2/{endpoint}", json=long_body).json()
    wait_progress(c, endpoint, running["id"])
    following = c.post("/v2/text-to-video", json=T2V).json()
    t0 = time.monotonic()
    r = c.delete(f"/v2/{endpoint}/{running['id']}")
    answered = time.monotonic() - t0
    assert r.status_code == 200, r.text
    body = r.json()
    assert_schema(body, "V2JobStatusResponse")
    assert body["status"] == "failed" and body["error"]["type"] == CANCELLED, body
    freed = None
    while time.monotonic() - t0 < 60:
        status = c.get(f"/v2/text-to-video/{following['id']}").json()["status"]
        if status != "pending":
            freed = time.monotonic() - t0
            break
        time.sleep(0.02)
    assert freed is not None, "the worker never took the next job"
    done = wait_terminal(c, "text-to-video", following["id"], timeout=120)
    assert done["status"] == "completed", done
    # the cancelled job stays cancelled: no late completion overwrote it
    final = c.get(f"/v2/{endpoint}/{running['id']}").json()
    assert final["error"]["type"] == CANCELLED and final["progress"] < 1, final
    log = srv.log()
    assert "lease lost; abandoning it (cancelled)" in log
    assert "stopped in the runner" in log and "restarting the runner" not in log
    assert runner_pids(worker) == runners, "the runner was restarted"
    print(
        f"cancel figures: {endpoint} on {srv.engine}: DELETE answered in {answered:.3f} s, "
        f"worker took the next job {freed:.3f} s after the DELETE"
    )
    return freed, body


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("cancel"), engine="preview").start()
    yield srv
    srv.stop()


def test_cancel_running_preview_job_keeps_the_runner(preview: Server) -> None:
    with preview.client() as c:
        freed, body = cancel_running(preview, c, "text-to-video", LONG)
    assert set(body) == {
        "status",
        "id",
        "created_at",
        "completed_at",
        "error",
        "progress",
        "expires_at",
    }
    assert body["expires_at"] > body["completed_at"]
    # every field is in the served document's failed variant, and DELETE is described
    doc = httpx.get(f"{preview.base_url}/openapi.json", timeout=30).json()
    assert doc["paths"]["/v2/{endpoint}/{id}"]["delete"]["x-ltxserve-extension"] is True
    failed = next(
        v
        for v in doc["components"]["schemas"]["V2JobStatusResponse"]["oneOf"]
        if v["description"] == "failed variant"
    )
    jsonschema.validate(
        body,
        {**failed, "additionalProperties": False, "components": doc["components"]},
        cls=jsonschema.Draft202012Validator,
    )
    # the engine stops at its next report, the worker learns within a progress write
    # (0.5 s): seconds at most, not the job's length
    assert freed < 15, freed


def test_cancel_pending_job_never_starts(preview: Server) -> None:
    with preview.client() as c:
        running = c.post("/v2/text-to-video", json=LONG).json()
        wait_status(c, "text-to-video", running["id"], "processing")
        queued = c.post("/v2/text-to-video", json=T2V).json()
        pending = c.get(f"/v2/text-to-video/{queued['id']}").json()
        assert pending["status"] == "pending" and pending["progress"] == 0, pending
        r = c.delete(f"/v2/text-to-video/{queued['id']}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "failed" and body["error"]["type"] == CANCELLED
        assert "progress" not in body  # it never made any
        # idempotent: a second DELETE answers the same object
        again = c.delete(f"/v2/text-to-video/{queued['id']}")
        assert again.status_code == 200 and again.json() == body
        # free the worker; the cancelled one must still not be claimed afterwards
        assert c.delete(f"/v2/text-to-video/{running['id']}").status_code == 200
        nxt = c.post("/v2/text-to-video", json=T2V).json()
        assert wait_terminal(c, "text-to-video", nxt["id"])["status"] == "completed"
    row = stored_job(preview, queued["id"])
    assert row is not None
    assert (row.attempts, row.started_at, row.status.value) == (0, None, "failed")


def test_cancel_answers_for_ended_and_foreign_jobs(preview: Server) -> None:
    other = preview.cli("keys", "create", "--name", "other").strip().splitlines()[-1]
    with preview.client() as c, preview.client(other) as o:
        job = c.post("/v2/text-to-video", json=T2V).json()
        path = f"/v2/text-to-video/{job['id']}"
        # another key's job is not found, and not cancelled
        assert_error(o.delete(path), 404, "not_found_error", job["id"])
        done = wait_terminal(c, "text-to-video", job["id"])
        assert done["status"] == "completed", done
        assert done["progress"] == 1 and done["expires_at"] > done["completed_at"]
        # a completed job cannot be cancelled: 409, and it stays completed
        assert_error(c.delete(path), 409, "invalid_request_error", "already completed")
        assert c.get(path).json() == done
        # the poll's other 404s
        assert_error(c.delete(f"/v2/image-to-video/{job['id']}"), 404, "not_found_error")
        assert_error(c.delete(f"/v2/nonsense/{job['id']}"), 404, "not_found_error")
        assert_error(c.delete("/v2/text-to-video/" + "0" * 36), 404, "not_found_error")
        r = httpx.delete(f"{preview.base_url}{path}")
        assert_error(r, 401, "authentication_error")
        # a wrong method on the job's path lists both methods
        r = c.put(path)
        assert_error(r, 405, "invalid_request_error")
        assert set(r.headers["allow"].split(", ")) >= {"GET", "DELETE"}


def test_a_job_failed_otherwise_cannot_be_cancelled(
    make_server: Callable[..., Server],
) -> None:
    """A job failed by the API otherwise (a v1 timeout) is not 'cancelled': 409."""
    srv = make_server(env={"LTXSERVE_SYNC_TIMEOUT_SECONDS": "1"})
    with srv.client() as c:
        r = c.post("/v1/text-to-video", json=LONG, timeout=60)
        assert r.status_code == 504
    store_ids = [row for row in (stored_job(srv, j) for j in _job_ids(srv)) if row is not None]
    (row,) = store_ids
    with srv.client() as c:
        assert_error(
            c.delete(f"/v2/text-to-video/{row.id}"), 409, "invalid_request_error", "api_error"
        )


def test_cancel_releases_held_credits(make_server: Callable[..., Server]) -> None:
    """Credits on (docs/credits.md): the holds of a cancelled running job and of a
    cancelled pending one come back whole, once, and nothing is charged."""
    from tests.store.test_credits_http import credits, history

    srv = make_server(env={"LTXSERVE_CREDITS": "true"}, engine="preview")
    srv.cli("keys", "top-up", srv.api_key, "1000")
    with srv.client() as c:
        running = c.post("/v2/text-to-video", json=LONG).json()
        wait_progress(c, "text-to-video", running["id"])
        queued = c.post("/v2/text-to-video", json=T2V).json()
        held = credits(c)["held"]
        assert isinstance(held, int) and held > 0
        for job in (queued, running):
            assert c.delete(f"/v2/text-to-video/{job['id']}").json()["error"]["type"] == CANCELLED
            # again: idempotent, and no second release
            assert c.delete(f"/v2/text-to-video/{job['id']}").status_code == 200
        assert credits(c) == {"enabled": True, "balance": 1000, "held": 0}
    kinds = [r[2] for r in history(srv, srv.api_key)]
    assert sorted(kinds) == ["hold", "hold", "release", "release", "top_up"], kinds


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database()


def test_cancel_through_another_api_process_on_postgresql(
    make_server: Callable[..., Server], pg_url: str
) -> None:
    """The scale-out layout: the job is submitted, polled and cancelled through an API
    process that is not the one whose `serve` runs the worker; only PostgreSQL joins
    them."""
    shared = {"LTXSERVE_DATABASE_URL": pg_url, "LTXSERVE_SECRET": "shared-test-secret"}
    a = make_server(env=shared, engine="preview")
    b = make_server(env=shared, workers=0)
    with b.client(a.api_key) as c:
        freed, body = cancel_running(a, c, "text-to-video", LONG)
        assert freed < 15, freed
        # and a pending one, queued behind a running job, never starts
        running = c.post("/v2/text-to-video", json=LONG).json()
        wait_status(c, "text-to-video", running["id"], "processing")
        queued = c.post("/v2/text-to-video", json=T2V).json()
        assert c.delete(f"/v2/text-to-video/{queued['id']}").json()["error"]["type"] == CANCELLED
        assert c.delete(f"/v2/text-to-video/{running['id']}").status_code == 200
        nxt = c.post("/v2/text-to-video", json=T2V).json()
        assert wait_terminal(c, "text-to-video", nxt["id"])["status"] == "completed"
        assert c.get(f"/v2/text-to-video/{queued['id']}").json()["error"]["type"] == CANCELLED
    assert f"job {queued['id']} (text-to-video) claimed" not in a.log()


def _job_ids(srv: Server) -> list[str]:
    from ltxserve.config import Settings
    from ltxserve.jobs.store.db import open_store
    from ltxserve.jobs.store.tables import jobs

    store = open_store(Settings(data_dir=srv.data_dir))
    try:
        with store.read() as conn:
            return [r.id for r in conn.execute(jobs.select()).all()]
    finally:
        store.engine.dispose()
