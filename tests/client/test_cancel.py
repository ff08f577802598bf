"""``cancel`` in the SDK (sync and async) and ``ltx cancel``, against the real server.

The server's side (pending never starts, running stops, runner kept) is tested in
tests/core/test_cancel.py; here: what a client sees and how it is typed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ltxserve.client import (
    AsyncClient,
    Client,
    FailedJob,
    InvalidRequestError,
    JobCancelledError,
    NotFoundError,
)
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.client.test_cli import T2V, as_json, ltx
from tests.support import Server

# long enough (10 s at 1080p) to be pending or processing when the cancel comes
LONG: dict[str, Any] = {
    **SMALL,
    "model": "ltx-2-3-pro",
    "duration": 10,
    "resolution": "1920x1080",
    "fps": 25,
}


def test_cancel_returns_the_failed_job_and_is_idempotent(client: Client) -> None:
    job = client.text_to_video.submit(**LONG)
    cancelled = client.text_to_video.cancel(job)
    assert isinstance(cancelled, FailedJob) and cancelled.cancelled
    assert cancelled.id == job.id and cancelled.error.type == "cancelled_error"
    assert cancelled.expires_at is not None and cancelled.expires_at > cancelled.completed_at
    with pytest.raises(JobCancelledError) as info:
        cancelled.raise_for_status()
    assert info.value.status_code is None and info.value.job is cancelled
    # a second cancel (a retry after a lost answer) returns the same job
    again = client.cancel("text-to-video", job.id)
    assert again.to_dict() == cancelled.to_dict()
    # wait() returns it at once; generate-style callers get the exception
    final = client.text_to_video.wait(job, timeout=10)
    assert isinstance(final, FailedJob) and final.cancelled


def test_cancel_of_an_ended_or_unknown_job_raises(client: Client) -> None:
    job = client.text_to_video.submit(**SMALL)
    done = client.text_to_video.wait(job, timeout=60)
    assert done.status == "completed" and done.progress == 1 and done.expires_at is not None
    with pytest.raises(InvalidRequestError) as info:
        client.text_to_video.cancel(job)
    assert info.value.status_code == 409 and "already completed" in info.value.message
    with pytest.raises(NotFoundError):
        client.image_to_video.cancel(job)  # another endpoint: not this job


def test_cancel_is_retried_like_a_get(client: Client, proxy: FaultProxy) -> None:
    job = client.text_to_video.submit(**LONG)
    proxy.fail(503, times=1, error_type="service_unavailable", method="DELETE")
    cancelled = client.text_to_video.cancel(job)
    assert isinstance(cancelled, FailedJob) and cancelled.cancelled
    assert [r.status for r in proxy.requests("DELETE")] == [503, 200]


def test_async_cancel(server: Server, proxy: FaultProxy) -> None:
    async def main() -> tuple[FailedJob, FailedJob]:
        async with AsyncClient(api_key=server.api_key, base_url=proxy.url, **FAST) as c:
            job = await c.text_to_video.submit(**LONG)
            first = await c.text_to_video.cancel(job)
            second = await c.cancel("text-to-video", job.id)
            assert isinstance(first, FailedJob) and isinstance(second, FailedJob)
            return first, second

    first, second = asyncio.run(main())
    assert first.cancelled and second.to_dict() == first.to_dict()


def test_ltx_cancel(ltx_env: dict[str, str]) -> None:
    long_args = [*T2V[:-4], "--duration", "10", "--resolution", "1920x1080", "--fps", "25"]
    long_args[long_args.index("--model") + 1] = "ltx-2-3-pro"
    submitted = ltx(*long_args, "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    result = ltx("cancel", "text-to-video", job_id, "--json")
    assert result.exit_code == 0, result.output
    data = as_json(result)
    assert data["job"]["status"] == "failed"
    assert data["job"]["error"]["type"] == "cancelled_error"
    shown = ltx("cancel", "text-to-video", job_id)  # again: the same job, exit 0
    assert shown.exit_code == 0 and "error: cancelled_error" in shown.stdout
    # a cancelled job waited on exits with its own code
    waited = ltx("status", "text-to-video", job_id, "--wait", "--json")
    assert waited.exit_code == 12, waited.output
    assert as_json(waited)["error"]["type"] == "cancelled_error"
    # a completed job cannot be cancelled: 409 invalid_request_error, exit 3
    done = ltx(*T2V, "--no-wait")
    done_id = done.stdout.strip()
    assert ltx("status", "text-to-video", done_id, "--wait").exit_code == 0
    refused = ltx("cancel", "text-to-video", done_id, "--json")
    assert refused.exit_code == 3, refused.output
    assert as_json(refused)["status_code"] == 409
    assert ltx("cancel", "retake", done_id).exit_code == 6
