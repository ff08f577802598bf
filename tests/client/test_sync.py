"""``Client`` against the real server: submit, get, wait, download, generate, upload."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from ltxserve.client import (
    AuthenticationError,
    Client,
    CompletedJob,
    FailedJob,
    InvalidRequestError,
    NotFoundError,
    PendingJob,
    ProcessingJob,
    TextToVideoRequest,
    WaitTimeoutError,
)
from ltxserve.client.types import JobStatus
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.support import Server


def frames_of(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.width, s.codec_context.height, sum(1 for _ in c.decode(video=0))


def test_generate_submits_waits_and_downloads_a_playable_file(
    client: Client, tmp_path: Path
) -> None:
    seen: list[JobStatus] = []
    progress: list[tuple[int, int | None]] = []
    gen = client.text_to_video.generate(
        **SMALL,
        output=tmp_path / "fox.mp4",
        on_status=seen.append,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert gen.path == tmp_path / "fox.mp4" and gen.job.status == "completed"
    assert frames_of(gen.path) == (1280, 720, 48)
    assert isinstance(seen[-1], CompletedJob)
    assert all(isinstance(s, PendingJob | ProcessingJob) for s in seen[:-1])
    reported = [s.progress for s in seen if isinstance(s, ProcessingJob) and s.progress]
    assert all(0 <= p <= 1 for p in reported)
    assert progress[0][0] == 0 and progress[-1][0] == gen.path.stat().st_size
    assert not list(tmp_path.glob("*.part"))


def test_the_steps_one_by_one_with_a_typed_request(client: Client, tmp_path: Path) -> None:
    job = client.text_to_video.submit(TextToVideoRequest(**SMALL, generate_audio=False))
    assert client.text_to_video.get(job).id == job.id
    final = client.text_to_video.wait(job, timeout=60)
    done = final.raise_for_status()
    path = client.download(done, tmp_path)  # a directory: the file is named after the job
    assert path == tmp_path / f"{job.id}.mp4"
    with av.open(str(path)) as c:
        assert not c.streams.audio  # generate_audio=False went over the wire


def test_polling_is_sparse_and_every_poll_reaches_the_server(
    server: Server, proxy: FaultProxy
) -> None:
    """A job that lingers 3 s (client-testing mode, docs/simulate.md) polled with a
    0.3 s ceiling: about one poll per 0.3 s, each at least 0.3 s apart, each one seen by
    the server. The count matters as much as the gaps: one poll has no gaps to check,
    and polls that back off past the ceiling have gaps that pass."""
    key = server.cli("keys", "create", "--name", "slow", "--simulate", "processing=3")
    seen: list[JobStatus] = []
    with Client(api_key=key.strip().splitlines()[-1], base_url=proxy.url, **FAST) as c:
        job = c.text_to_video.submit(**SMALL)
        started = time.monotonic()
        c.text_to_video.wait(job, poll_interval=0.3, timeout=60, on_status=seen.append, live=False)
        elapsed = time.monotonic() - started
    polls = proxy.requests("GET", f"/v2/text-to-video/{job.id}")
    gaps = [b.at - a.at for a, b in zip(polls, polls[1:], strict=False)]
    assert len(polls) == len(seen), (len(polls), len(seen))  # no poll answered on the way
    # every 0.3 s all along (half that rate leaves room for a loaded machine's slow
    # answers), not once at the end nor backing off, and no more often than asked
    assert elapsed / 0.6 <= len(polls) <= elapsed / 0.3 + 2, (elapsed, gaps)
    assert all(g >= 0.28 for g in gaps), gaps


def test_wait_follows_a_retry_after_hint_on_status_answers(
    client: Client, proxy: FaultProxy
) -> None:
    job = client.text_to_video.submit(**SMALL)
    proxy.add_header(f"/v2/text-to-video/{job.id}", "Retry-After", "1")
    client.text_to_video.wait(job, poll_interval=0.05, timeout=60, live=False)
    polls = proxy.requests("GET", f"/v2/text-to-video/{job.id}")
    gaps = [b.at - a.at for a, b in zip(polls, polls[1:], strict=False)]
    assert gaps and all(g >= 0.95 for g in gaps), gaps


def test_wait_gives_up_after_its_timeout_and_says_where_the_job_is(client: Client) -> None:
    job = client.text_to_video.submit(**SMALL)
    with pytest.raises(WaitTimeoutError) as info:
        client.text_to_video.wait(job, timeout=0.05)
    assert info.value.job.id == job.id and info.value.job.status in ("pending", "processing")
    client.text_to_video.wait(job, timeout=60)  # it finishes anyway; don't leak work


def test_a_failed_job_is_data_until_raise_for_status(client: Client) -> None:
    # Passes the submit checks; the worker cannot fetch it, so the job fails.
    garbage = "https://host.invalid/photo.png"
    job = client.image_to_video.submit(**SMALL, image_uri=garbage)
    final = client.image_to_video.wait(job, timeout=60)
    assert isinstance(final, FailedJob)
    assert final.error.type == "invalid_request_error"
    with pytest.raises(InvalidRequestError) as info:
        final.raise_for_status()
    assert info.value.job is final and info.value.status_code is None
    with pytest.raises(InvalidRequestError):  # generate raises instead of downloading
        client.image_to_video.generate(**SMALL, image_uri=garbage)


def test_http_errors_map_to_their_classes_and_are_not_retried(
    server: Server, client: Client, proxy: FaultProxy
) -> None:
    with pytest.raises(InvalidRequestError) as bad:
        client.text_to_video.submit(**{**SMALL, "model": "ltx-2-fast"})
    assert bad.value.status_code == 400 and "removed" in bad.value.message
    assert len(bad.value.request_id or "") == 32
    with pytest.raises(NotFoundError):
        client.retake.get("00000000-0000-0000-0000-000000000000")
    with (
        Client(api_key="wrong", base_url=proxy.url, **FAST) as stranger,
        pytest.raises(AuthenticationError),
    ):
        stranger.text_to_video.submit(**SMALL)
    assert [s.status for s in proxy.requests()] == [400, 404, 401]  # one attempt each


def test_upload_puts_the_bytes_and_returns_a_storage_uri(
    client: Client, proxy: FaultProxy, png_file: Path
) -> None:
    ticket = client.upload(png_file)
    assert ticket.storage_uri and ticket.upload_url
    put = proxy.requests("PUT")
    assert len(put) == 1 and put[0].body == png_file.read_bytes()
    assert "authorization" not in {k.lower() for k in put[0].headers}  # pre-signed: no key
    assert client.upload(b"raw bytes").storage_uri != ticket.storage_uri


def test_local_paths_in_uri_fields_are_uploaded_and_substituted(
    client: Client, proxy: FaultProxy, png_file: Path, tmp_path: Path
) -> None:
    gen = client.image_to_video.generate(**SMALL, image_uri=png_file, output=tmp_path / "i.mp4")
    assert frames_of(gen.path)[:2] == (1280, 720)
    (submit,) = proxy.requests("POST", "/v2/image-to-video")
    (ticket,) = proxy.requests("POST", "/v1/upload")
    assert str(png_file) not in submit.body.decode()
    assert b'"image_uri"' in submit.body and b"ltx://" in submit.body


def test_polling_is_adaptive_under_the_documented_ceiling(
    server: Server, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default settings (5 s ceiling): a short job is seen done in about a second, not
    after a first 5 s sleep; the gaps grow towards the ceiling and never pass it."""
    monkeypatch.delenv("LTX_POLL_INTERVAL", raising=False)
    with Client(api_key=server.api_key, base_url=proxy.url) as c:
        job = c.text_to_video.submit(**SMALL)
        started = time.monotonic()
        c.text_to_video.wait(job, timeout=60, live=False)
        elapsed = time.monotonic() - started
    polls = proxy.requests("GET", f"/v2/text-to-video/{job.id}")
    gaps = [b.at - a.at for a, b in zip(polls, polls[1:], strict=False)]
    assert elapsed < 4.5, (elapsed, gaps)
    assert gaps and 0.45 <= gaps[0] < 1.5, gaps
    assert max(gaps) <= 5.5, gaps
    delays = [
        Client._poll_delay(
            n,
            5.0,
            PendingJob(status="pending", id="x", created_at=datetime.now(UTC)),
            watching=False,
        )
        for n in range(1, 12)
    ]
    assert delays[0] == 0.5 and delays == sorted(delays) and delays[-1] == 5.0
    running = ProcessingJob(status="processing", id="x", created_at=datetime.now(UTC), progress=0.4)
    assert Client._poll_delay(9, 5.0, running, watching=True) == 1.0  # a progress display
    assert Client._poll_delay(9, 5.0, running, watching=False) == 5.0
