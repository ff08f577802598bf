"""``JobManager.cancel`` over memory, SQLite and PostgreSQL, and the worker's side of
it (tests/core/test_cancel.py does the same over HTTP with real processes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ltxserve.errors import CANCELLED_ERROR, JobEndedError, NotFoundError
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.runner import Failed, RunJob
from tests.store import test_manager
from tests.store.test_manager import _done, _worker

make_manager = test_manager.make_manager  # the fixture, over memory, SQLite and PostgreSQL

T2V = "text-to-video"


def test_a_cancelled_pending_job_is_never_claimed(make_manager: Callable[..., JobManager]) -> None:
    m = make_manager()
    job = m.submit("k1", T2V, {"prompt": "x"})
    with pytest.raises(NotFoundError):
        m.cancel("k2", T2V, job.id)  # another key's job
    with pytest.raises(NotFoundError):
        m.cancel("k1", "retake", job.id)  # asked under another endpoint
    view = m.cancel("k1", T2V, job.id)
    assert (view.status, view.error_type) == (JobStatus.FAILED, CANCELLED_ERROR)
    assert view.expires_at is not None and view.completed_at is not None
    assert m.claim("w1") is None
    assert m.cancel("k1", T2V, job.id) == view  # idempotent
    stored = m.job(job.id)
    assert stored is not None and (stored.attempts, stored.started_at) == (0, None)


def test_a_cancelled_running_job_is_no_longer_its_workers(
    make_manager: Callable[..., JobManager],
) -> None:
    m = make_manager()
    job = m.submit("k1", T2V, {"prompt": "x"})
    claimed = m.claim("w1")
    assert claimed is not None and claimed.id == job.id
    assert m.heartbeat(claimed, "w1", 0.4)
    view = m.cancel("k1", T2V, job.id)
    assert view.error_type == CANCELLED_ERROR and view.progress == pytest.approx(0.4)
    # the worker's next progress write or heartbeat says so, and its late result is refused
    assert not m.heartbeat(claimed, "w1", 0.5)
    assert not m.complete(claimed, "w1", {})
    assert m.get("k1", T2V, job.id).error_type == CANCELLED_ERROR


def test_an_ended_job_cannot_be_cancelled(make_manager: Callable[..., JobManager]) -> None:
    m = make_manager()
    done = m.submit("k1", T2V, {"prompt": "x"})
    m.complete(m.claim("w1"), "w1", {})  # type: ignore[arg-type]
    with pytest.raises(JobEndedError, match="already completed"):
        m.cancel("k1", T2V, done.id)
    failed = m.submit("k1", T2V, {"prompt": "y"})
    m.fail(m.claim("w1"), "w1", "api_error", "boom")  # type: ignore[arg-type]
    with pytest.raises(JobEndedError, match=r"already failed \(api_error\)"):
        m.cancel("k1", T2V, failed.id)
    assert m.get("k1", T2V, done.id).status == JobStatus.COMPLETED


def test_the_worker_does_not_start_a_job_cancelled_while_its_inputs_were_fetched(
    make_manager: Callable[..., JobManager],
) -> None:
    """Inputs that took longer than a progress interval: the worker looks before the
    engine starts, instead of at the engine's first progress report."""
    m = make_manager(progress_seconds=0.0)
    job = m.submit("k1", T2V, {"prompt": "x"})
    w = _worker(m, _done)
    claimed = m.claim(w.owner)
    assert claimed is not None
    m.cancel("k1", T2V, job.id)
    w.process(claimed)
    sent: list[Any] = w.runner.sent  # type: ignore[attr-defined]
    assert not any(isinstance(s, RunJob) for s in sent)
    assert m.get("k1", T2V, job.id).error_type == CANCELLED_ERROR


def test_the_worker_stops_a_cancelled_job_and_keeps_its_runner(
    make_manager: Callable[..., JobManager],
) -> None:
    m = make_manager()
    job = m.submit("k1", T2V, {"prompt": "x"})

    def script(run: RunJob) -> list[Any]:
        cancel = lambda: m.cancel("k1", T2V, run.job_id) and None  # noqa: E731
        # then silence until the worker notices; a Failed it would record must not come
        return [cancel] + [None] * 100 + [Failed(run.job_id, "api_error", "late")]

    w = _worker(m, script)
    w.process(m.claim(w.owner))  # type: ignore[arg-type]
    assert w.runner.restarts == 0  # type: ignore[attr-defined]
    assert m.get("k1", T2V, job.id).error_type == CANCELLED_ERROR
