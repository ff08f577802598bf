"""The model engine on CPU with a tiny random LTX-2 (tests/engines/tiny_ltx.py).

The tiny model is saved in diffusers format and loaded through the same
registry path as real weights. Every endpoint runs through the engine and its
output is checked against the plan (size, frame count, fps, audio); one job
runs the whole server path. Generation runs at a tiny internal size
(``max_pixels``) and is scaled to the requested resolution.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

pytest.importorskip("torch", reason="the ltx engine tests need torch (pip install -e '.[ltx]')")
pytest.importorskip("diffusers", reason="the ltx engine tests need diffusers (the 'ltx' extra)")
pytest.importorskip("transformers", reason="the ltx engine tests need transformers")

from ltxserve.config import Settings  # noqa: E402
from ltxserve.engines.dispatch import run_job  # noqa: E402
from ltxserve.engines.ltx import LtxEngine, available  # noqa: E402
from ltxserve.engines.ltx.registry import RegistryError, load_registry  # noqa: E402
from ltxserve.media.exr import decode_exr  # noqa: E402
from ltxserve.media.probe import probe  # noqa: E402
from ltxserve.media.writer import VideoWriter  # noqa: E402
from tests.core.media import data_uri, png_bytes, wav_bytes, write_ramp_video  # noqa: E402
from tests.engines.tiny_ltx import (  # noqa: E402
    MAX_SEQUENCE_LENGTH,
    build_lora,
    build_tiny_ltx,
    distilled_copy,
)
from tests.support import Server, wait_terminal  # noqa: E402

TINY = {
    "device": "cpu",
    "dtype": "float32",
    "steps": 2,
    "guidance_scale": 1.0,
    "stg_scale": 0.0,
    "modality_scale": 1.0,
    "audio_guidance_scale": 1.0,
    "stg_blocks": None,
    "max_sequence_length": MAX_SEQUENCE_LENGTH,
    "max_pixels": 96 * 64,
    "cpu_threads": 1,
}


def write_registry(path: Path, weights: Path, **models: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "defaults": TINY,
                "models": {name: {"path": str(weights), **entry} for name, entry in models.items()},
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"))


@pytest.fixture(scope="module")
def distilled(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return distilled_copy(weights, tmp_path_factory.mktemp("tiny-ltx-distilled") / "w")


@pytest.fixture(scope="module")
def stage2_lora(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(weights, tmp_path_factory.mktemp("lora") / "distilled-lora.safetensors")


@pytest.fixture(scope="module")
def registry_file(
    weights: Path, distilled: Path, stage2_lora: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    two_stage = {
        "upsampler": str(weights / "latent_upsampler"),
        "two_stage_min_pixels": 1,
        "stage2_sigmas": [0.9, 0.5],
        "max_pixels": 128 * 128,
        "stage2_lora": str(stage2_lora),
    }
    return write_registry(
        tmp_path_factory.mktemp("reg") / "models.json",
        weights,
        **{
            "ltx-2-3-pro": {},
            "ltx-2-3-fast": {"schedule": "distilled", "path": str(distilled)},
            "ltx-2-5-pro": two_stage,
        },
    )


@pytest.fixture(scope="module")
def engine(registry_file: Path) -> LtxEngine:
    eng = LtxEngine(Settings(), load_registry(registry_file))
    eng.load()
    return eng


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    (d / "in.png").write_bytes(png_bytes(64, 36))
    (d / "tone.wav").write_bytes(wav_bytes(2.5))
    video = d / "in.mp4"  # 3 s, frame i is flat grey (3 * i), with a 440 Hz tone
    write_ramp_video(video, 160, 90)
    silent = d / "silent.mp4"
    with VideoWriter(silent, 96, 128, 25, audio=False) as w:
        for i in range(75):
            w.write_frame(np.full((128, 96, 3), 3 * i, np.uint8))
    return {
        "image_uri": d / "in.png",
        "last_frame_uri": d / "in.png",
        "audio_uri": d / "tone.wav",
        "video_uri": video,
        "silent": silent,
    }


RunJob = Callable[..., tuple[Path, list[float]]]


@pytest.fixture
def run(engine: LtxEngine, media: dict[str, Path], tmp_path: Path) -> RunJob:
    def go(
        endpoint: str, request: dict[str, Any], *fields: str, video: str = "video_uri"
    ) -> tuple[Path, list[float]]:
        inputs = {f: media[video if f == "video_uri" else f] for f in fields}
        out = tmp_path / "out"
        out.mkdir()
        seen: list[float] = []
        result = run_job(engine, "job-1", endpoint, request, inputs, out, seen.append)
        (output,) = result.outputs.values()
        assert output.path.parent == out and output.path.stat().st_size > 0
        return output.path, seen

    return go


def check_video(
    path: Path, width: int, height: int, fps: int, frames: int, audio_seconds: float | None
) -> Any:
    info = probe(path)
    assert info.video is not None
    assert (info.video.width, info.video.height) == (width, height)
    assert info.video.fps == Fraction(fps)
    assert info.video.frames == frames
    if audio_seconds is None:
        assert info.audio is None
    else:
        assert info.audio is not None and info.audio.sample_rate == 48000
        assert abs(info.audio.duration - audio_seconds) < 0.05, info.audio.duration
    return info


def frame_means(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.to_ndarray(format="gray").mean()) for f in c.decode(video=0)]


def audio_rms(path: Path, start: float, end: float) -> float:
    with av.open(str(path)) as c:
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    return float(np.sqrt(np.mean(samples[int(start * 48000) : int(end * 48000)] ** 2)))


def test_text_to_video_distilled_with_audio_and_step_progress(run: RunJob) -> None:
    path, seen = run(
        "text-to-video",
        {
            "prompt": "a cat on the sea",
            "model": "ltx-2-3-fast",
            "duration": 2,
            "resolution": "1280x720",
            "fps": 24,
            "generate_audio": True,
            "camera_motion": "dolly_in",
        },
    )
    check_video(path, 1280, 720, 24, 48, 2.0)
    steps = [f for f in seen if 0 < f <= 0.9]
    assert steps[:2] == pytest.approx([0.45, 0.9])  # one report per denoising step (2 steps)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_text_to_video_two_stage_without_audio(run: RunJob) -> None:
    path, _ = run(
        "text-to-video",
        {
            "prompt": "a city at night",
            "model": "ltx-2-5-pro",
            "duration": 2,
            "resolution": "1920x1080",
            "fps": 50,
            "generate_audio": False,
        },
    )
    check_video(path, 1920, 1080, 50, 100, None)


def test_image_to_video_first_frame(run: RunJob) -> None:
    path, _ = run(
        "image-to-video",
        {
            "prompt": "a robot",
            "model": "ltx-2-3-pro",
            "duration": 2,
            "resolution": "720x1280",
            "fps": 25,
        },
        "image_uri",
    )
    check_video(path, 720, 1280, 25, 50, 2.0)


def test_image_to_video_first_and_last_frame_two_stage(run: RunJob) -> None:
    path, _ = run(
        "image-to-video",
        {
            "prompt": "a bird",
            "model": "ltx-2-5-pro",
            "duration": 3,
            "resolution": "1280x720",
            "fps": 24,
        },
        "image_uri",
        "last_frame_uri",
    )
    check_video(path, 1280, 720, 24, 72, 3.0)


def test_audio_to_video_keeps_the_input_audio(run: RunJob) -> None:
    path, _ = run(
        "audio-to-video",
        {"prompt": "music", "model": "ltx-2-3-pro", "guidance_scale": 5.0, "resolution": None},
        "audio_uri",
    )
    check_video(path, 1920, 1080, 25, 62, 2.48)
    assert abs(audio_rms(path, 0.2, 2.2) - 0.3 / np.sqrt(2)) < 0.03  # the input's tone


def test_audio_to_video_portrait_from_image(run: RunJob, media: dict[str, Path]) -> None:
    portrait = media["image_uri"].parent / "portrait.png"
    portrait.write_bytes(png_bytes(36, 64))
    media_backup = media["image_uri"]
    media["image_uri"] = portrait
    try:
        path, _ = run(
            "audio-to-video",
            {"model": "ltx-2-3-pro", "guidance_scale": 9.0, "prompt": None, "resolution": None},
            "audio_uri",
            "image_uri",
        )
    finally:
        media["image_uri"] = media_backup
    check_video(path, 1080, 1920, 25, 62, 2.48)


@pytest.mark.parametrize("mode", ["replace_video", "replace_audio", "replace_audio_and_video"])
def test_retake_replaces_only_the_window(run: RunJob, mode: str) -> None:
    path, _ = run(
        "retake",
        {
            "prompt": "a dog",
            "start_time": 1.0,
            "duration": 1.0,
            "mode": mode,
            "model": "ltx-2-3-pro",
            "resolution": "160x90",
        },
        "video_uri",
    )
    check_video(path, 160, 90, 24, 72, 3.0)
    means = frame_means(path)
    for i in list(range(0, 20)) + list(range(52, 72)):  # outside the window: the input itself
        assert abs(means[i] - 3 * i) < 3, (i, means[i])
    if mode == "replace_audio":
        assert all(abs(means[i] - 3 * i) < 3 for i in range(24, 48))
    else:
        assert any(abs(means[i] - 3 * i) > 3 for i in range(24, 48))
    tone = audio_rms(path, 1.1, 1.9)
    assert abs(tone - 0.212) < 0.03 if mode == "replace_video" else abs(tone - 0.212) > 0.01
    assert abs(audio_rms(path, 0.1, 0.9) - 0.212) < 0.03  # held outside the window


@pytest.mark.parametrize("mode", ["end", "start"])
def test_extend_adds_frames_and_keeps_the_input(run: RunJob, mode: str) -> None:
    path, _ = run(
        "extend",
        {
            "prompt": "the sea",
            "duration": 2.0,
            "mode": mode,
            "model": "ltx-2-3-pro",
            "context": 1.0,
        },
        "video_uri",
    )
    check_video(path, 160, 90, 24, 120, 5.0)
    means = frame_means(path)
    offset = 0 if mode == "end" else 48
    for i in range(0, 72, 7):
        assert abs(means[offset + i] - 3 * i) < 3, (i, means[offset + i])
    kept = (0.1, 2.9) if mode == "end" else (2.1, 4.9)
    assert abs(audio_rms(path, *kept) - 0.212) < 0.03


def test_extend_without_audio(run: RunJob) -> None:
    path, _ = run(
        "extend",
        {"prompt": "", "duration": 2.0, "mode": "end", "model": "ltx-2-3-pro", "context": None},
        "video_uri",
        video="silent",
    )
    check_video(path, 96, 128, 25, 125, None)


def test_hdr_writes_scene_linear_exr_frames(run: RunJob) -> None:
    path, _ = run("video-to-video-hdr", {}, "video_uri", video="silent")
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert names == [f"frame_{i:05d}.exr" for i in range(75)]
        frame = decode_exr(zf.read(names[-1]))
    assert frame.shape == (128, 96, 3) and frame.dtype == np.float16
    assert float(frame.min()) >= 0 and np.isfinite(frame).all()


def test_reframe_outpaints_around_the_input(run: RunJob) -> None:
    path, _ = run(
        "video-to-video-reframe", {"model": "ltx-2-3-pro", "resolution": "720x1280"}, "video_uri"
    )
    check_video(path, 720, 1280, 24, 72, 3.0)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    centre = frames[50][640 - 150 : 640 + 150, 100:620]  # the input, 720x405 centred
    assert abs(float(centre.mean()) - 150) < 4
    assert abs(audio_rms(path, 0.1, 2.9) - 0.212) < 0.03


def test_unconfigured_model_is_a_request_error(run: RunJob) -> None:
    from ltxserve.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="not configured"):
        run(
            "text-to-video",
            {
                "prompt": "x",
                "model": "ltx-9-pro",
                "duration": 2,
                "resolution": "1280x720",
                "fps": 24,
            },
        )


def test_load_is_offline_and_weights_stay_resident(engine: LtxEngine) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    (_, model), (_, other) = engine.models["ltx-2-3-pro"], engine.models["ltx-2-5-pro"]
    assert model is other  # same weights directory: loaded once
    assert model.pipe("cond").transformer is model.base.transformer


def test_missing_or_incomplete_weights_fail_at_load(weights: Path, tmp_path: Path) -> None:
    missing = write_registry(tmp_path / "a.json", tmp_path / "nowhere", **{"ltx-2-3-pro": {}})
    with pytest.raises(RegistryError, match="nowhere"):
        LtxEngine(Settings(), load_registry(missing)).load()
    partial = tmp_path / "partial"
    shutil.copytree(weights, partial)
    for f in (partial / "transformer").glob("*.safetensors"):
        f.unlink()
    reg = write_registry(tmp_path / "b.json", partial, **{"ltx-2-3-pro": {}})
    with pytest.raises(RegistryError, match="transformer holds no weight files"):
        LtxEngine(Settings(), load_registry(reg)).load()


def test_available_needs_cuda_and_weights(
    registry_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setenv("LTXSERVE_LTX_MODELS_FILE", str(registry_file))
    assert available(Settings()) is torch.cuda.is_available()
    monkeypatch.setenv("LTXSERVE_LTX_MODELS_FILE", str(registry_file.parent / "absent.json"))
    assert available(Settings()) is False


@pytest.fixture
def ltx_server(make_server: Callable[..., Server], registry_file: Path) -> Iterator[Server]:
    yield make_server(engine="ltx", env={"LTXSERVE_LTX_MODELS_FILE": str(registry_file)})


def test_server_job_path(ltx_server: Server, media: dict[str, Path]) -> None:
    import httpx

    body = {
        "prompt": "a robot dancing",
        "model": "ltx-2-3-pro",
        "duration": 2,
        "resolution": "1280x720",
        "fps": 25,
        "image_uri": data_uri("image/png", media["image_uri"].read_bytes()),
    }
    with ltx_server.client() as c:
        job = c.post("/v2/image-to-video", json=body)
        assert job.status_code == 202, job.text
        done = wait_terminal(c, "image-to-video", job.json()["id"], timeout=120)
    assert done["status"] == "completed", (done, ltx_server.log()[-3000:])
    video = httpx.get(done["result"]["video_url"], timeout=30)
    out = media["image_uri"].parent / "server.mp4"
    out.write_bytes(video.content)
    check_video(out, 1280, 720, 25, 50, 2.0)
    assert "engine: ltx" in ltx_server.log()
