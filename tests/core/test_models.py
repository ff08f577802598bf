"""LTX-2.5 models, automatic duration and the new audio-to-video resolutions, over HTTP.

The accepted matrix is written out here from the hosted service's published rules
(issue #12), independently of data/models.json, so a wrong table fails the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from ltxserve.jobs.contract.catalog import auto_duration
from tests.core.media import data_uri, mp4_bytes, png_bytes, wav_bytes
from tests.support import Server, assert_error, wait_terminal

HD = ["1280x720", "720x1280", "1920x1080", "1080x1920"]
UHD = ["2560x1440", "1440x2560", "3840x2160", "2160x3840"]
SHORT = [2, 3, 4, 5, 6, 8, 10]
LONG = [12, 14, 16, 18, 20]


def hosted_25(model: str) -> set[tuple[str, int, int]]:
    """(resolution, fps, duration) the hosted service accepts for a 2.5 model."""
    if model == "ltx-2-5-fast":
        ok = set(itertools.product(HD + UHD, [24, 25, 48, 50], SHORT))
        return ok | set(itertools.product(HD, [24, 25], LONG))
    return set(itertools.product(HD, [24, 25, 50], SHORT))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An API without workers: submits are checked and queued, nothing renders."""
    srv = Server(tmp_path_factory.mktemp("api"), workers=0).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("model", ["ltx-2-5-fast", "ltx-2-5-pro"])
def test_ltx25_text_to_video_matrix(api: Server, model: str) -> None:
    ok = hosted_25(model)
    every = set(itertools.product(HD + UHD, [24, 25, 48, 50], SHORT + LONG))
    with api.client() as c:
        for res, fps, dur in sorted(every):
            r = c.post(
                "/v2/text-to-video",
                json={
                    "prompt": "a cat",
                    "model": model,
                    "duration": dur,
                    "resolution": res,
                    "fps": fps,
                },
            )
            if (res, fps, dur) in ok:
                assert r.status_code == 202, (res, fps, dur, r.text)
            else:
                assert r.status_code == 400, (res, fps, dur, r.text)
                assert "not supported by " + model in r.json()["error"]["message"]


def test_ltx25_image_to_video_and_features(api: Server) -> None:
    image = data_uri("image/png", png_bytes())
    with api.client() as c:
        for model in ("ltx-2-5-fast", "ltx-2-5-pro"):
            r = c.post(
                "/v2/image-to-video",
                json={
                    "prompt": "a cat",
                    "model": model,
                    "duration": 6,
                    "resolution": "1080x1920",
                    "fps": 25,
                    "image_uri": image,
                },
            )
            assert r.status_code == 202, r.text
            # last frames are an LTX-2.3 feature (the contract's last_frame_uri note)
            assert_error(
                c.post(
                    "/v2/image-to-video",
                    json={
                        "prompt": "a cat",
                        "model": model,
                        "duration": 6,
                        "resolution": "1920x1080",
                        "image_uri": image,
                        "last_frame_uri": image,
                    },
                ),
                400,
                "invalid_request_error",
                f"last_frame_uri is not supported by model {model}",
            )
        body = {
            "prompt": "a cat",
            "duration": 4,
            "resolution": "1920x1080",
            "camera_motion": "dolly_in",
        }
        assert c.post("/v2/text-to-video", json={**body, "model": "ltx-2-5-pro"}).status_code == 202
        assert_error(
            c.post("/v2/text-to-video", json={**body, "model": "ltx-2-5-fast"}),
            400,
            "invalid_request_error",
            "camera_motion is not supported by model ltx-2-5-fast",
        )


@pytest.mark.parametrize(
    "endpoint,body",
    [
        ("retake", {"video_uri": "https://example.com/v.mp4", "start_time": 0, "duration": 2}),
        ("extend", {"video_uri": "https://example.com/v.mp4", "duration": 2}),
        (
            "video-to-video-reframe",
            {"video_uri": "https://example.com/v.mp4", "resolution": "1920x1080"},
        ),
    ],
)
@pytest.mark.parametrize("model", ["ltx-2-5-fast", "ltx-2-5-pro"])
def test_ltx25_does_not_edit(api: Server, endpoint: str, body: dict[str, Any], model: str) -> None:
    with api.client() as c:
        r = c.post(f"/v2/{endpoint}", json={**body, "model": model})
    assert_error(
        r,
        400,
        "invalid_request_error",
        f"model {model} does not support {endpoint}; use ltx-2-3-pro",
    )


def test_null_duration_only_where_automatic(api: Server) -> None:
    t2v = {"prompt": "a cat", "resolution": "1920x1080"}
    with api.client() as c:
        for model in ("ltx-2-5-fast", "ltx-2-5-pro"):
            assert (
                c.post(
                    "/v2/text-to-video", json={**t2v, "model": model, "duration": None}
                ).status_code
                == 202
            )
            assert c.post("/v2/text-to-video", json={**t2v, "model": model}).status_code == 202
        for model in ("ltx-2-3-fast", "ltx-2-3-pro"):
            assert_error(
                c.post("/v2/text-to-video", json={**t2v, "model": model, "duration": None}),
                400,
                "invalid_request_error",
                f"duration must not be null for model {model}",
            )
            assert_error(
                c.post("/v2/text-to-video", json={**t2v, "model": model}),
                400,
                "invalid_request_error",
                "duration is required",
            )
        assert_error(
            c.post(
                "/v2/audio-to-video",
                json={
                    "audio_uri": "https://example.com/a.wav",
                    "prompt": "x",
                    "model": "ltx-2-5-pro",
                    "duration": None,
                },
            ),
            400,
            "invalid_request_error",
            "duration must not be null",
        )
        assert_error(
            c.post(
                "/v2/retake",
                json={"video_uri": "https://example.com/v.mp4", "start_time": 0, "duration": None},
            ),
            400,
            "invalid_request_error",
            "duration must not be null",
        )


def test_audio_to_video_resolutions_and_audio_limits(api: Server) -> None:
    short, long = data_uri("audio/wav", wav_bytes(8)), data_uri("audio/wav", wav_bytes(12))
    with api.client() as c:

        def a2v(model: str, res: str | None, audio: str) -> httpx.Response:
            body = {"audio_uri": audio, "prompt": "music", "model": model}
            return c.post("/v2/audio-to-video", json={**body, "resolution": res} if res else body)

        for model in ("ltx-2-3-pro", "ltx-2-5-fast", "ltx-2-5-pro"):
            for res in HD:
                assert a2v(model, res, long).status_code == 202, (model, res)
        for model in ("ltx-2-3-pro", "ltx-2-5-fast"):
            for res in UHD:
                assert a2v(model, res, short).status_code == 202, (model, res)
                assert_error(
                    a2v(model, res, long),
                    400,
                    "invalid_request_error",
                    f"audio must be between 2 and 10 seconds long at {res}",
                )
        assert_error(
            a2v("ltx-2-5-pro", "2560x1440", short),
            400,
            "invalid_request_error",
            "resolution 2560x1440 is not supported by ltx-2-5-pro for audio-to-video",
        )
        assert_error(
            a2v("ltx-2-3-fast", None, short),
            400,
            "invalid_request_error",
            "does not support audio-to-video",
        )


# --- rendering: every engine serves the new combinations -----------------------------------


def probe_mp4(client: httpx.Client, url: str, tmp: Path) -> tuple[int, int, Fraction, float]:
    path = tmp / "out.mp4"
    path.write_bytes(httpx.get(url, timeout=60).content)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.demux(v) if _.size)
        fps = Fraction(v.average_rate)
        return v.codec_context.width, v.codec_context.height, fps, float(frames / fps)


RENDER_CASES: list[tuple[str, dict[str, Any], tuple[int, int], float | None]] = [
    # automatic duration: absent, and explicit null
    (
        "text-to-video",
        {
            "prompt": "a red fox runs through the snow",
            "model": "ltx-2-5-fast",
            "resolution": "1280x720",
            "fps": 25,
        },
        (1280, 720),
        None,
    ),
    (
        "image-to-video",
        {
            "prompt": "the robot waves at the camera, then turns around and "
            "walks away down a long corridor lit by flickering lamps",
            "model": "ltx-2-5-pro",
            "duration": None,
            "resolution": "720x1280",
            "fps": 24,
            "image_uri": "IMAGE",
        },
        (720, 1280),
        None,
    ),
    (
        "text-to-video",
        {
            "prompt": "a cat",
            "model": "ltx-2-5-pro",
            "duration": 2,
            "resolution": "1280x720",
            "fps": 50,
            "camera_motion": "jib_up",
        },
        (1280, 720),
        2.0,
    ),
    (
        "audio-to-video",
        {
            "prompt": "a drummer",
            "model": "ltx-2-5-fast",
            "audio_uri": "AUDIO",
            "resolution": "2560x1440",
        },
        (2560, 1440),
        2.0,
    ),
    (
        "audio-to-video",
        {
            "prompt": "a singer",
            "model": "ltx-2-3-pro",
            "audio_uri": "AUDIO",
            "resolution": "720x1280",
        },
        (720, 1280),
        2.0,
    ),
    (
        "audio-to-video",
        {"prompt": "a choir", "model": "ltx-2-5-pro", "audio_uri": "AUDIO", "image_uri": "IMAGE"},
        (1920, 1080),
        2.0,
    ),
    (
        "image-to-video",
        {
            "prompt": "a kite",
            "model": "ltx-2-5-fast",
            "duration": 2,
            "resolution": "1440x2560",
            "fps": 48,
            "image_uri": "IMAGE",
            "generate_audio": False,
        },
        (1440, 2560),
        2.0,
    ),
]


@pytest.mark.parametrize("engine", ["minimal", "preview"])
def test_engines_render_ltx25_and_auto_duration(
    make_server: Callable[..., Server], tmp_path: Path, engine: str
) -> None:
    srv = make_server(engine=engine)
    image, audio = data_uri("image/png", png_bytes()), data_uri("audio/wav", wav_bytes(2))
    with srv.client() as c:
        jobs = []
        for endpoint, body, size, seconds in RENDER_CASES:
            body = {
                k: image if v == "IMAGE" else audio if v == "AUDIO" else v for k, v in body.items()
            }
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, r.text
            jobs.append((endpoint, body, size, seconds, r.json()["id"]))
        for endpoint, body, size, seconds, job_id in jobs:
            status = wait_terminal(c, endpoint, job_id, timeout=300)
            assert status["status"] == "completed", status
            w, h, fps, length = probe_mp4(c, status["result"]["video_url"], tmp_path)
            assert (w, h) == size
            if seconds is None:  # automatic: the documented rule, told by the status object
                seconds = auto_duration(body["prompt"], [2, 3, 4, 5, 6, 8, 10])
                assert status["duration"] == seconds
            assert fps == Fraction(body.get("fps") or 25)
            assert abs(length - seconds) < 1e-6, (endpoint, body.get("model"), length, seconds)
            assert abs(status["duration"] - length) < 1e-3, (status, length)


def test_auto_duration_rule_is_deterministic_and_in_range() -> None:
    offered = [2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20]
    assert auto_duration("a cat", offered) == 4  # 3 s + 5/60 s, rounded up
    assert auto_duration("x" * 130, offered) == 6  # 3 + 2.17 -> 6 (no 5.17 < 5)
    assert auto_duration("海" * 300, offered) == 8  # characters count: no spaces needed
    assert auto_duration("x" * 5000, offered) == 20
    assert auto_duration("x" * 5000, [2, 3, 4, 5, 6, 8, 10]) == 10


# --- retake's default resolution (contract: EditVideoRequestResolution) -------------------


@pytest.mark.parametrize("engine", ["minimal", "preview"])
def test_retake_default_resolution_follows_the_input_orientation(
    make_server: Callable[..., Server], tmp_path: Path, engine: str
) -> None:
    srv = make_server(engine=engine)
    cases = [((320, 180), (1920, 1080)), ((180, 320), (1080, 1920)), ((240, 240), (1920, 1080))]
    with srv.client() as c:
        jobs = []
        for (w, h), want in cases:
            video = data_uri("video/mp4", mp4_bytes(w, h, frames=73))
            r = c.post(
                "/v2/retake",
                json={"video_uri": video, "start_time": 1, "duration": 2, "prompt": "rain"},
            )
            assert r.status_code == 202, r.text
            jobs.append((r.json()["id"], want))
        for job_id, want in jobs:
            status = wait_terminal(c, "retake", job_id, timeout=300)
            assert status["status"] == "completed", status
            w, h, fps, length = probe_mp4(c, status["result"]["video_url"], tmp_path)
            assert (w, h) == want
            assert fps == 24 and abs(length - 73 / 24) < 1e-6


def test_cli_help_tells_the_contract_defaults() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "250", "TERM": "dumb"}

    def help_of(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "ltxserve.client.cli", *args, "--help"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return " ".join(out.split())

    assert "1080x1920 for a portrait input, else 1920x1080" in help_of("retake")
    assert "ltx-2-5-fast" in help_of("text-to-video") and "'auto'" in help_of("text-to-video")
    a2v = help_of("audio-to-video")
    assert "2560x1440" in a2v and "ltx-2-5-pro" in a2v and "2-10 s at 1440p/4K" in a2v
