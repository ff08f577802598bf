"""The model engine (tiny random LTX-2 on CPU) serves the LTX-2.5 combinations, automatic
duration and the contract's retake default over the whole server path (issue #12, #15)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch", reason="the ltx engine tests need torch (pip install -e '.[ltx]')")
pytest.importorskip("diffusers", reason="the ltx engine tests need diffusers (the 'ltx' extra)")

from ltxserve.jobs.contract.catalog import auto_duration  # noqa: E402
from ltxserve.media.probe import probe  # noqa: E402
from tests.core.media import data_uri, mp4_bytes, png_bytes, wav_bytes  # noqa: E402
from tests.engines.test_ltx import write_registry  # noqa: E402
from tests.engines.tiny_ltx import build_tiny_ltx  # noqa: E402
from tests.support import Server, wait_terminal  # noqa: E402


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    weights = build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"))
    models = {name: {} for name in ("ltx-2-3-pro", "ltx-2-3-fast", "ltx-2-5-pro")}
    models["ltx-2-5-fast"] = {"schedule": "distilled"}
    return write_registry(tmp_path_factory.mktemp("reg") / "models.json", weights, **models)


@pytest.fixture
def ltx_server(make_server: Callable[..., Server], registry: Path) -> Iterator[Server]:
    yield make_server(engine="ltx", env={"LTXSERVE_LTX_MODELS_FILE": str(registry)})


def test_ltx_engine_serves_ltx25_and_auto_duration(ltx_server: Server, tmp_path: Path) -> None:
    auto_prompt = "a robot on the sea at sunset"
    cases = [
        (
            "text-to-video",
            {"prompt": auto_prompt, "model": "ltx-2-5-fast", "resolution": "1280x720"},
            (1280, 720, 24),
            auto_duration(auto_prompt, [2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20]),
        ),
        (
            "image-to-video",
            {
                "prompt": "a bird",
                "model": "ltx-2-5-pro",
                "duration": None,
                "resolution": "720x1280",
                "fps": 25,
                "camera_motion": "dolly_in",
                "image_uri": data_uri("image/png", png_bytes()),
            },
            (720, 1280, 25),
            auto_duration("a bird", [2, 3, 4, 5, 6, 8, 10]),
        ),
        (
            "audio-to-video",
            {
                "prompt": "music",
                "model": "ltx-2-5-fast",
                "resolution": "2560x1440",
                "audio_uri": data_uri("audio/wav", wav_bytes(2)),
            },
            (2560, 1440, 25),
            2.0,
        ),
        # retake without resolution: the contract's 1920x1080 for a landscape input
        (
            "retake",
            {
                "video_uri": data_uri("video/mp4", mp4_bytes(160, 96, frames=73)),
                "start_time": 1,
                "duration": 2,
                "prompt": "a dog",
            },
            (1920, 1080, 24),
            73 / 24,
        ),
    ]
    with ltx_server.client() as c:
        jobs = []
        for endpoint, body, shape, seconds in cases:
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, r.text
            jobs.append((endpoint, r.json()["id"], shape, seconds))
        for endpoint, job_id, (w, h, fps), seconds in jobs:
            done = wait_terminal(c, endpoint, job_id, timeout=600)
            assert done["status"] == "completed", (done, ltx_server.log()[-3000:])
            out = tmp_path / f"{endpoint}.mp4"
            out.write_bytes(httpx.get(done["result"]["video_url"], timeout=60).content)
            video = probe(out).video
            assert video is not None
            assert (video.width, video.height, video.fps) == (w, h, fps), (endpoint, video)
            length = video.frames / video.fps
            assert abs(length - seconds) < 1e-6, (endpoint, length, seconds)
            assert done["duration"] == round(float(length), 3)
