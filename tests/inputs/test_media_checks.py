"""Media validation over real HTTP: every malformed or out-of-rule input gets a clean 400.

Data URIs are checked at submit, so each case is one request; the server must
answer the envelope naming the input and the rule, and stay up.
"""

from __future__ import annotations

import base64
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ltxserve.errors import InvalidRequestError
from ltxserve.inputs.media import InputInfo, inspect
from ltxserve.inputs.rules import check_input
from tests.core.media import write_portrait_phone_video
from tests.inputs.media import (
    audio_bytes,
    bomb_png,
    data_uri,
    image_bytes,
    truncated,
    video_bytes,
)
from tests.support import Server, assert_error, wait_terminal

I2V = {"prompt": "a fox", "model": "ltx-2-3-fast", "duration": 2, "resolution": "1280x720"}


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """API only (no worker): submit-time checks without a queue of jobs to generate."""
    srv = Server(tmp_path_factory.mktemp("checker"), workers=0).start()
    yield srv
    srv.stop()


def i2v(image: bytes, mime: str = "image/png") -> tuple[str, dict[str, Any]]:
    return "image-to-video", {**I2V, "image_uri": data_uri(mime, image)}


def a2v(audio: bytes, mime: str = "audio/wav") -> tuple[str, dict[str, Any]]:
    return "audio-to-video", {"audio_uri": data_uri(mime, audio), "prompt": "drums"}


def video(endpoint: str, data: bytes, **extra: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"video_uri": data_uri("video/mp4", data), **extra}
    if endpoint == "retake":
        body = {"start_time": 0, "duration": 2, **body}
    elif endpoint == "extend":
        body = {"duration": 2, **body}
    elif endpoint == "video-to-video-reframe":
        body = {"model": "ltx-2-3-pro", "resolution": "720x720", **body}
    return endpoint, body


# (id, request maker, expected message fragment)
BAD: list[tuple[str, Callable[[], tuple[str, dict[str, Any]]], str]] = [
    ("empty image", lambda: i2v(b""), "image_uri: the file is empty"),
    ("empty audio", lambda: a2v(b""), "audio_uri: the file is empty"),
    ("empty video", lambda: video("retake", b""), "video_uri: the file is empty"),
    ("text as image", lambda: i2v(b"hello " * 50), "image_uri must be a PNG, JPEG or WEBP"),
    ("gif", lambda: i2v(b"GIF89a" + bytes(100), "image/gif"), "image_uri must be a PNG"),
    ("video as image", lambda: i2v(video_bytes(), "image/png"), "looks like MP4"),
    ("image as video", lambda: video("retake", image_bytes("PNG")), "looks like PNG"),
    ("image as audio", lambda: a2v(image_bytes("JPEG")), "audio_uri must be WAV, MP3"),
    (
        "png magic, junk body",
        lambda: i2v(b"\x89PNG\r\n\x1a\n" + bytes(300)),
        "image_uri: the file is corrupt or truncated",
    ),
    (
        "mp4 magic, junk body",
        lambda: video("retake", bytes(4) + b"ftypisom" + bytes(500)),
        "video_uri: the file is corrupt or truncated",
    ),
    ("truncated png", lambda: i2v(truncated(image_bytes("PNG", 320, 180))), "truncated"),
    ("truncated jpeg", lambda: i2v(truncated(image_bytes("JPEG", 320, 180))), "truncated"),
    ("truncated webp", lambda: i2v(truncated(image_bytes("WEBP", 320, 180))), "truncated"),
    ("truncated mp4", lambda: video("retake", truncated(video_bytes())), "truncated"),
    ("truncated mkv", lambda: video("retake", truncated(video_bytes("matroska"))), "truncated"),
    ("truncated wav", lambda: a2v(truncated(audio_bytes("wav"))), "truncated"),
    ("truncated m4a", lambda: a2v(truncated(audio_bytes("m4a"))), "truncated"),
    ("png bomb 50000x50000", lambda: i2v(bomb_png()), "image_uri: the image is too large"),
    ("png 9000x9000", lambda: i2v(bomb_png(9000, 9000)), "the image is 9000x9000"),
    (
        "vp9 video",
        lambda: video("retake", video_bytes("webm", "libvpx-vp9", frames=10)),
        "only H.264 and H.265",
    ),
    ("ogg opus", lambda: a2v(audio_bytes("opus"), "audio/ogg"), "OGG audio must be Vorbis"),
    ("flac", lambda: a2v(audio_bytes("flac"), "audio/flac"), "audio_uri must be WAV"),
    (
        "audio 1 s",
        lambda: a2v(audio_bytes("wav", 1.0)),
        "between 2 and 20 seconds long (it is 1 s)",
    ),
    ("audio 21 s", lambda: a2v(audio_bytes("wav", 21.0)), "between 2 and 20 seconds"),
    (
        "retake 40 frames",
        lambda: video("retake", video_bytes(frames=40)),
        "at least 73 frames (it has 40)",
    ),
    ("extend 40 frames", lambda: video("extend", video_bytes(frames=40)), "at least 73 frames"),
    ("extend 4:3", lambda: video("extend", video_bytes(width=320, height=240)), "16:9 or 9:16"),
    (
        "extend context+duration",
        lambda: video("extend", video_bytes(), context=20),
        "context + duration must be at most 505 frames",
    ),
    (
        "video over 4K",
        lambda: video("video-to-video-hdr", video_bytes(width=3842, height=64, frames=2)),
        "at most 3840x2160",
    ),
    (
        "hdr 1080p tier",
        lambda: video("video-to-video-hdr", video_bytes(width=64, height=36, frames=182)),
        "at most 181 frames",
    ),
    (
        "reframe frames",
        lambda: video(
            "video-to-video-reframe", video_bytes(width=32, height=32, fps=50, frames=1801)
        ),
        "1800 frames",
    ),
    (
        "reframe seconds",
        lambda: video(
            "video-to-video-reframe", video_bytes(width=32, height=32, fps=10, frames=610)
        ),
        "at most 60 s",
    ),
    (
        "data uri not base64",
        lambda: ("image-to-video", {**I2V, "image_uri": "data:image/png;base64,***"}),
        "not valid base64",
    ),
    (
        "data uri without base64",
        lambda: ("image-to-video", {**I2V, "image_uri": "data:,x"}),
        "data:<mime>;base64",
    ),
    (
        "data uri image over 7 MB",
        lambda: (
            "image-to-video",
            {**I2V, "image_uri": "data:image/png;base64," + "A" * (7 * 1024 * 1024 + 4)},
        ),
        "larger than the 7 MB limit",
    ),
    (
        "data uri video over 15 MB",
        lambda: (
            "video-to-video-hdr",
            {"video_uri": "data:video/mp4;base64," + "A" * (15 * 1024 * 1024 + 4)},
        ),
        "larger than the 15 MB limit",
    ),
    (
        "http url",
        lambda: ("image-to-video", {**I2V, "image_uri": "http://example.com/a.png"}),
        "http:// URLs are not allowed",
    ),
    (
        "ip literal url",
        lambda: ("image-to-video", {**I2V, "image_uri": "https://127.0.0.1/a.png"}),
        "IP address hosts are not allowed",
    ),
    (
        "metadata ip url",
        lambda: ("video-to-video-hdr", {"video_uri": "https://169.254.169.254/latest/meta-data"}),
        "IP address hosts",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [(m, msg) for _, m, msg in BAD], ids=[name for name, _, _ in BAD]
)
def test_bad_input_is_a_clean_400(
    checker: Server, make: Callable[[], tuple[str, dict[str, Any]]], message: str
) -> None:
    endpoint, body = make()
    with checker.client() as c:
        assert_error(c.post(f"/v2/{endpoint}", json=body), 400, "invalid_request_error", message)
        assert c.get("/healthz").status_code == 200


GOOD = [
    ("jpeg", lambda: i2v(image_bytes("JPEG"), "image/jpeg")),
    ("webp", lambda: i2v(image_bytes("WEBP"), "image/webp")),
    ("png named jpeg", lambda: i2v(image_bytes("PNG"), "image/jpeg")),  # content decides
    ("mov", lambda: video("retake", video_bytes("mov"))),
    ("mkv", lambda: video("retake", video_bytes("matroska"))),
    ("hevc mp4", lambda: video("retake", video_bytes("mp4", "libx265"))),
    ("portrait extend", lambda: video("extend", video_bytes(width=180, height=320))),
    ("mp3", lambda: a2v(audio_bytes("mp3"), "audio/mpeg")),
    ("m4a", lambda: a2v(audio_bytes("m4a"), "audio/mp4")),
    ("ogg vorbis", lambda: a2v(audio_bytes("ogg"), "audio/ogg")),
    ("audio exactly 2 s", lambda: a2v(audio_bytes("wav", 2.0))),
    (
        "hdr at the tier limit",
        lambda: video("video-to-video-hdr", video_bytes(width=64, height=36, frames=181)),
    ),
]


@pytest.mark.parametrize("make", [m for _, m in GOOD], ids=[n for n, _ in GOOD])
def test_accepted_formats(checker: Server, make: Callable[[], tuple[str, dict[str, Any]]]) -> None:
    endpoint, body = make()
    with checker.client() as c:
        r = c.post(f"/v2/{endpoint}", json=body)
    assert r.status_code == 202, r.text


def test_other_formats_run_through(server: Server) -> None:
    """WEBP, H.265 in MKV and OGG Vorbis go all the way to completed on the minimal engine."""
    cases = [
        i2v(image_bytes("WEBP"), "image/webp"),
        video("video-to-video-reframe", video_bytes("matroska", "libx265")),
        (
            "audio-to-video",
            {"audio_uri": data_uri("audio/ogg", audio_bytes("ogg", 2.0)), "prompt": "rain"},
        ),
    ]
    with server.client() as c:
        jobs = []
        for endpoint, body in cases:
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, (endpoint, r.text)
            jobs.append((endpoint, r.json()["id"]))
        for endpoint, job_id in jobs:
            assert wait_terminal(c, endpoint, job_id)["status"] == "completed", endpoint


def test_mutated_media_never_breaks_the_checker() -> None:
    """Bit flips, cuts and splices of every accepted format: a result or a clean error."""
    rng = random.Random(7)
    seeds = {
        "image_uri": [image_bytes(f) for f in ("PNG", "JPEG", "WEBP")],
        "video_uri": [video_bytes(), video_bytes("matroska"), video_bytes("mp4", "libx265")],
        "audio_uri": [audio_bytes(f) for f in ("wav", "mp3", "m4a", "ogg")],
    }
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f"
        for field, items in seeds.items():
            for data in items:
                for _ in range(25):
                    b = bytearray(data)
                    op = rng.randrange(3)
                    if op == 0:
                        for _ in range(rng.randint(1, 20)):
                            j = rng.randrange(len(b))
                            b[j] ^= 1 << rng.randrange(8)
                    elif op == 1:
                        b = b[: rng.randrange(1, len(b))]
                    else:
                        j = rng.randrange(8, len(b))
                        b[j:j] = rng.randbytes(200)
                    path.write_bytes(bytes(b))
                    try:
                        inspect(field, path)
                    except InvalidRequestError as exc:
                        assert exc.message.startswith(field), exc.message


@pytest.mark.parametrize(
    ("w", "h", "frames", "ok"),
    [
        (1920, 1080, 181, True),
        (1080, 1920, 182, False),
        (2560, 1440, 101, True),
        (2560, 1440, 102, False),
        (1440, 2560, 101, True),
        (3840, 2160, 41, True),
        (3840, 2160, 42, False),
        (2000, 1000, 102, False),
        (1921, 1080, 101, True),
    ],
)
def test_hdr_tiers(w: int, h: int, frames: int, ok: bool) -> None:
    from fractions import Fraction

    info = InputInfo("video_uri", "video", "mp4", "H.264", w, h, Fraction(24), frames, frames / 24)
    if ok:
        check_input("video-to-video-hdr", {}, info)
    else:
        with pytest.raises(InvalidRequestError, match="HDR inputs up to"):
            check_input("video-to-video-hdr", {}, info)


def test_extend_frame_budget_follows_input_fps() -> None:
    from fractions import Fraction

    def info(fps: int) -> InputInfo:
        return InputInfo(
            "video_uri", "video", "mp4", "H.264", 1920, 1080, Fraction(fps), 200, 200 / fps
        )

    check_input("extend", {"duration": 20, "context": 1}, info(24))  # 504 frames
    with pytest.raises(InvalidRequestError, match="505 frames at the input's 24 fps"):
        check_input("extend", {"duration": 20, "context": 1.1}, info(24))
    with pytest.raises(InvalidRequestError, match="at the input's 50 fps"):
        check_input("extend", {"duration": 10, "context": 1}, info(50))  # 550 frames
    check_input("extend", {"duration": 20, "context": 20}, info(12))  # 480 frames


def test_a_big_valid_data_uri_is_fine(checker: Server) -> None:
    """Near the 7 MB image limit: accepted (the JSON body limit is 32 MB)."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1300, 1300, 3), np.uint8)).save(
        buf, "PNG", compress_level=0
    )
    data = buf.getvalue()
    assert 5 * 1024 * 1024 < len(base64.b64encode(data)) < 7 * 1024 * 1024
    with checker.client() as c:
        r = c.post("/v2/image-to-video", json={**I2V, "image_uri": data_uri("image/png", data)})
    assert r.status_code == 202, r.text


def test_a_rotated_video_reports_the_size_it_plays_at(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    write_portrait_phone_video(path, frames=80)  # stored 320x192, displayed: 192x320
    info = inspect("video_uri", path)
    assert (info.width, info.height, info.frames) == (192, 320, 80)
    with pytest.raises(InvalidRequestError, match=r"\(it is 192x320\)"):
        check_input("extend", {"duration": 2}, info)
