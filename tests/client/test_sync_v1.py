"""``generate_sync``: the synchronous /v1 endpoints through the SDK, against the real server.

A v1 call is one request held open for the whole generation, so its retry rules
differ from v2's: only what never reached the server, or what it refused before
starting (429, 503), is sent again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import pytest

from ltxserve.client import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncClient,
    Client,
    InternalServerError,
    InvalidRequestError,
)
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.support import Server

V1 = "/v1/text-to-video"


def probe(path: Path) -> tuple[int, int, int, bool]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        return s.codec_context.width, s.codec_context.height, frames, bool(c.streams.audio)


def test_one_request_answers_with_the_video(
    client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    progress: list[tuple[int, int | None]] = []
    path = client.text_to_video.generate_sync(
        **SMALL,
        generate_audio=True,
        output=tmp_path / "fox.mp4",
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert path == tmp_path / "fox.mp4"
    assert probe(path) == (1280, 720, 48, True)
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)
    assert [s.status for s in proxy.requests(path_prefix="/v")] == [200]  # no polls
    assert proxy.requests()[0].path == V1
    assert not list(tmp_path.glob("*.part"))


def test_local_inputs_are_uploaded_and_a_directory_gets_a_named_file(
    client: Client, proxy: FaultProxy, png_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = client.image_to_video.generate_sync(**SMALL, image_uri=str(png_file), output=out)
    assert path.parent == out and path.name.startswith("image-to-video-")
    assert path.suffix == ".mp4" and probe(path)[:3] == (1280, 720, 48)
    assert [s.method for s in proxy.requests()] == ["POST", "PUT", "POST"]
    assert proxy.requests()[0].path == "/v1/upload"
    (sent,) = proxy.requests("POST", "/v1/image-to-video")
    assert str(png_file) not in sent.body.decode() and b"ltx://" in sent.body


def test_refusals_are_retried_but_a_dropped_or_failed_generation_is_not(
    client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.fail(503, error_type="service_unavailable", path_prefix=V1)
    proxy.fail(429, error_type="rate_limit_error", retry_after="0", path_prefix=V1)
    client.text_to_video.generate_sync(**SMALL, output=tmp_path / "a.mp4")
    assert [s.status for s in proxy.requests(path_prefix=V1)] == [503, 429, 200]

    proxy.reset()
    proxy.drop(path_prefix=V1)  # the request arrived: the server may be generating
    with pytest.raises(APIConnectionError):
        client.text_to_video.generate_sync(**SMALL, output=tmp_path / "b.mp4")
    assert len(proxy.requests(path_prefix=V1)) == 1

    proxy.reset()
    proxy.fail(500, path_prefix=V1)  # a v1 500 is a generation that ran and failed
    with pytest.raises(InternalServerError):
        client.text_to_video.generate_sync(**SMALL, output=tmp_path / "c.mp4")
    proxy.fail(504, path_prefix=V1)  # outlived the server's limit
    with pytest.raises(APIError) as info:
        client.text_to_video.generate_sync(**SMALL, output=tmp_path / "d.mp4")
    assert info.value.status_code == 504
    assert len(proxy.requests(path_prefix=V1)) == 2
    assert not list(tmp_path.glob("[bcd].mp4*"))


def test_v2_only_endpoints_and_bad_requests(
    client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no synchronous /v1"):
        client.video_to_video_hdr.generate_sync(
            video_uri="https://example.com/a.mp4", output=tmp_path / "x.mp4"
        )
    assert proxy.requests() == []
    with pytest.raises(InvalidRequestError) as bad:
        client.text_to_video.generate_sync(
            **{**SMALL, "model": "ltx-2-fast"}, output=tmp_path / "y.mp4"
        )
    assert bad.value.status_code == 400
    assert [s.status for s in proxy.requests()] == [400]
    assert not (tmp_path / "y.mp4").exists()


def test_async_generate_sync(server: Server, proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.fail(503, error_type="service_unavailable", path_prefix=V1)

    async def main() -> Path:
        async with AsyncClient(api_key=server.api_key, base_url=proxy.url, **FAST) as c:
            return await c.text_to_video.generate_sync(**SMALL, output=tmp_path / "a.mp4")

    path = asyncio.run(main())
    assert probe(path)[:3] == (1280, 720, 48)
    assert [s.status for s in proxy.requests(path_prefix=V1)] == [503, 200]


def test_a_call_that_outlives_its_timeout_is_not_sent_again(
    client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    with pytest.raises(APITimeoutError):
        client.text_to_video.generate_sync(**SMALL, output=tmp_path / "slow.mp4", timeout=0.05)
    time.sleep(1.0)  # any retry (backoff 0.05-0.2 s) would have arrived by now
    assert proxy.arrivals == [V1]
    assert not list(tmp_path.iterdir())
