"""The SDK's live events over real HTTP: ``events()`` and ``wait()`` follow the stream of
an ltxserve server, and fall back to polling where the events route answers 404 (the
hosted API has none) while a job that does not exist still raises NotFoundError."""

from __future__ import annotations

import asyncio
import time

import pytest

from ltxserve.client import (
    AsyncClient,
    Client,
    CompletedJob,
    NotFoundError,
    ProcessingJob,
    WaitTimeoutError,
)
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.client.relay import Relay
from tests.support import Server


def slow_key(server: Server) -> str:
    out = server.cli("keys", "create", "--name", "slow-sdk", "--simulate", "processing=1.5")
    return out.strip().splitlines()[-1]


def test_events_yield_each_change_then_the_end(server: Server) -> None:
    with Client(api_key=slow_key(server), base_url=server.base_url, **FAST) as c:
        job = c.text_to_video.submit(**SMALL)
        seen = list(c.text_to_video.events(job, timeout=60))
    assert isinstance(seen[-1], CompletedJob), seen
    assert all(not isinstance(s, CompletedJob) for s in seen[:-1])
    progress = [s.progress for s in seen if isinstance(s, ProcessingJob) and s.progress]
    assert len(progress) >= 2 and progress == sorted(progress), seen


def test_wait_uses_the_stream_not_polls(client: Client, proxy: FaultProxy) -> None:
    job = client.text_to_video.submit(**SMALL)
    assert client.text_to_video.wait(job, timeout=60).status == "completed"
    asked = [s.path for s in proxy.requests("GET", f"/v2/text-to-video/{job.id}")]
    assert asked == [f"/v2/text-to-video/{job.id}/events"], asked


def test_wait_falls_back_to_polling_on_a_404(client: Client, proxy: FaultProxy) -> None:
    job = client.text_to_video.submit(**SMALL)
    events = f"/v2/text-to-video/{job.id}/events"
    proxy.fail(404, times=1, error_type="not_found_error", method="GET", path_prefix=events)
    assert client.text_to_video.wait(job, timeout=60).status == "completed"
    asked = [(s.path, s.status) for s in proxy.requests("GET", f"/v2/text-to-video/{job.id}")]
    assert asked[0] == (events, 404), asked
    assert len(asked) >= 2 and all(p == f"/v2/text-to-video/{job.id}" for p, _ in asked[1:])
    # remembered for the client's lifetime: the next wait polls at once
    proxy.reset()
    again = client.text_to_video.submit(**SMALL)
    client.text_to_video.wait(again, timeout=60)
    assert not proxy.requests("GET", f"/v2/text-to-video/{again.id}/events")


def test_an_unknown_job_is_not_found_not_a_fallback(client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.text_to_video.wait("0" * 36, timeout=10)
    with pytest.raises(NotFoundError):
        list(client.text_to_video.events("0" * 36))


def test_async_events_and_wait(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(api_key=slow_key(server), base_url=server.base_url, **FAST) as c:
            jobs = [await c.text_to_video.submit(**SMALL) for _ in range(2)]
            seen = [s async for s in c.text_to_video.events(jobs[0], timeout=60)]
            assert isinstance(seen[-1], CompletedJob) and len(seen) >= 3, seen
            done = await c.text_to_video.wait(jobs[1], timeout=60)
            assert done.status == "completed"
            with pytest.raises(NotFoundError):
                await c.text_to_video.wait("0" * 36, timeout=10)

    asyncio.run(main())


def test_a_broken_stream_resumes_with_last_event_id(server: Server) -> None:
    """The connection is cut after the first progress event: ``events()`` reopens it
    with ``Last-Event-ID`` and goes on to the end, with no status seen twice."""
    relay = Relay(server.port)
    try:
        with Client(api_key=slow_key(server), base_url=relay.url, **FAST) as c:
            job = c.text_to_video.submit(**SMALL)
            seen = []
            for status in c.text_to_video.events(job, timeout=60):
                seen.append(status)
                if len(relay.heads) == 2 and isinstance(status, ProcessingJob) and status.progress:
                    relay.cut()  # heads: the submit, then this stream
        assert isinstance(seen[-1], CompletedJob), seen
        pairs = [(s.status, getattr(s, "progress", None)) for s in seen]
        assert len(pairs) == len(set(pairs)), pairs  # nothing repeated across the break
        streams = [h for h in relay.heads if b"/events " in h]
        assert len(streams) >= 2, relay.heads
        assert b"last-event-id:" not in streams[0].lower()
        assert b"last-event-id:" in streams[1].lower(), streams[1]
    finally:
        relay.close()


def test_a_wait_timeout_holds_while_progress_keeps_the_stream_busy(server: Server) -> None:
    """Progress events arrive more often than the time left, so the read timeout never
    fires: the deadline must still end the wait, sync and async, with the last status."""
    key = server.cli("keys", "create", "--name", "busy", "--simulate", "processing=4")
    key = key.strip().splitlines()[-1]
    with Client(api_key=key, base_url=server.base_url, **FAST) as c:
        job = c.text_to_video.submit(**SMALL)
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as caught:
            c.text_to_video.wait(job, timeout=1.0)
        assert time.monotonic() - started < 2.5
        assert caught.value.job.status in ("pending", "processing")
        c.text_to_video.cancel(job)  # free the worker: the async job must be processing

    async def run() -> None:
        async with AsyncClient(api_key=key, base_url=server.base_url, **FAST) as c:
            job = await c.text_to_video.submit(**SMALL)
            started = time.monotonic()
            with pytest.raises(WaitTimeoutError) as caught:
                await c.text_to_video.wait(job, timeout=1.0)
            assert time.monotonic() - started < 2.5
            assert caught.value.job.status == "processing"

    asyncio.run(run())
