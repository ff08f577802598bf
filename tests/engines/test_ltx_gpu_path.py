"""The model engine's GPU path, checked on CPU with the tiny model (issue 18).

What only real LTX-2.3 weights on a GPU would show is made visible here: the tiny
model carries the dev checkpoint's scheduler config (tiny_ltx.LTX23_DEV_SCHEDULER),
the transformer's inputs are recorded, and with ``offload: model`` every move of a
module is recorded, so which modules are "on the accelerator" is known at any time
(on CPU the accelerate hooks move modules to ``cpu:0`` and back to ``cpu``).
"""

from __future__ import annotations

import weakref
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the ltx engine tests need torch (the 'ltx' extra)")
pytest.importorskip("diffusers", reason="the ltx engine tests need diffusers (the 'ltx' extra)")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402

from ltxserve.config import Settings  # noqa: E402
from ltxserve.engines.dispatch import run_job  # noqa: E402
from ltxserve.engines.ltx import LtxEngine  # noqa: E402
from ltxserve.engines.ltx.registry import load_registry  # noqa: E402
from tests.core.media import png_bytes, write_ramp_video  # noqa: E402
from tests.engines.test_ltx import check_video, write_registry  # noqa: E402
from tests.engines.tiny_ltx import (  # noqa: E402
    build_hdr_embeds,
    build_lora,
    build_tiny_ltx,
    distilled_copy,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gpu-path")
    weights = build_tiny_ltx(d / "dev")
    distilled = distilled_copy(weights, d / "distilled")
    (d / "in.png").write_bytes(png_bytes(64, 36))
    video = d / "in.mp4"  # 3 s at 24 fps, frame i flat grey (3 * i), a 440 Hz tone
    write_ramp_video(video, 160, 90)
    return {
        "dev": weights,
        "distilled": distilled,
        "stage2_lora": build_lora(weights, d / "lora" / "distilled-lora.safetensors"),
        "hdr_lora": build_lora(weights, d / "lora" / "hdr-lora.safetensors", seed=2),
        "hdr_embeds": build_hdr_embeds(distilled, d / "hdr-embeds.safetensors"),
        "image_uri": d / "in.png",
        "video_uri": video,
    }


def two_stage(files: dict[str, Path]) -> dict[str, Any]:
    return {
        "two_stage_min_pixels": 1,
        "stage2_sigmas": [0.9, 0.5],
        "upsampler": str(files["dev"] / "latent_upsampler"),
        "stage2_lora": str(files["stage2_lora"]),
        "max_pixels": 128 * 128,
    }


@pytest.fixture(scope="module")
def engine(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> LtxEngine:
    reg = write_registry(
        tmp_path_factory.mktemp("reg") / "models.json",
        files["dev"],
        **{
            "two-stage": two_stage(files),
            "chunked": {"max_frames": 17},
            "distilled-recipe": {
                "path": str(files["distilled"]),
                "schedule": "distilled",
                "steps": None,
            },
            "hdr": {
                "path": str(files["distilled"]),
                "schedule": "distilled",
                "hdr_lora": str(files["hdr_lora"]),
                "hdr_embeds": str(files["hdr_embeds"]),
                "max_frames": 17,
            },
        },
    )
    data = reg.read_text().replace(
        '"models"', '"endpoint_models": {"video-to-video-hdr": "hdr"}, "models"'
    )
    reg.write_text(data)
    eng = LtxEngine(Settings(), load_registry(reg))
    eng.load()
    return eng


@pytest.fixture(scope="module")
def offload_engine(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> LtxEngine:
    reg = write_registry(
        tmp_path_factory.mktemp("reg-offload") / "models.json",
        files["dev"],
        **{"two-stage": {**two_stage(files), "offload": "model", "vae_tiling": True}},
    )
    eng = LtxEngine(Settings(), load_registry(reg))
    eng.load()
    return eng


def run(
    engine: LtxEngine,
    files: dict[str, Path],
    out: Path,
    endpoint: str,
    request: dict[str, Any],
    *inputs: str,
) -> Path:
    out.mkdir()
    paths = {f: files[f] for f in inputs}
    (output,) = run_job(
        engine, "job-1", endpoint, request, paths, out, lambda _: None
    ).outputs.values()
    return output.path


@pytest.fixture
def per_call(engine: LtxEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[float]]]:
    """Start a new list of timesteps at every pipeline call (wraps generate._call)."""
    from ltxserve.engines.ltx import generate

    calls: list[list[float]] = []
    real = generate._call

    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append([])
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "_call", call)
    handles = []
    for model in {id(m): m for _, m in engine.models.values()}.values():

        def record(_: Any, args: Any, kwargs: dict[str, Any]) -> None:
            calls[-1].append(round(float(kwargs["timestep"].flatten()[0]), 3))

        handles.append(model.base.transformer.register_forward_pre_hook(record, with_kwargs=True))
    yield calls
    for h in handles:
        h.remove()


def test_the_tiny_model_has_the_dev_checkpoints_scheduler(engine: LtxEngine) -> None:
    config = engine.models["two-stage"][1].scheduler.config
    assert config.use_dynamic_shifting is True and config.shift_terminal == 0.1
    assert (config.base_shift, config.max_shift) == (0.95, 2.05)
    fixed = engine.models["two-stage"][1].fixed_scheduler.config
    assert fixed.use_dynamic_shifting is False and fixed.shift_terminal is None


def test_stage2_sigmas_reach_the_transformer_as_given(
    engine: LtxEngine, files: dict[str, Path], tmp_path: Path, per_call: list[list[float]]
) -> None:
    request = {
        "prompt": "a city at night",
        "model": "two-stage",
        "duration": 2,
        "resolution": "1920x1080",
        "fps": 24,
        "generate_audio": True,
    }
    path = run(engine, files, tmp_path / "o", "text-to-video", request)
    check_video(path, 1920, 1080, 24, 48, 2.0)
    stage1, stage2 = per_call
    # Stage 1 (2 steps, no explicit sigmas) keeps the checkpoint's shifted schedule: its
    # shift_terminal makes the last step 0.1.
    assert len(stage1) == 2 and stage1[-1] == pytest.approx(100.0)
    # Stage 2 is re-noised to stage2_sigmas[0] and the model is told exactly these sigmas.
    assert stage2 == pytest.approx([900.0, 500.0])


def test_distilled_sigmas_reach_the_transformer_as_given(
    engine: LtxEngine, files: dict[str, Path], tmp_path: Path, per_call: list[list[float]]
) -> None:
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    request = {
        "prompt": "a cat",
        "model": "distilled-recipe",
        "duration": 2,
        "resolution": "1280x720",
        "fps": 24,
        "generate_audio": False,
    }
    run(engine, files, tmp_path / "o", "text-to-video", request)
    assert per_call == [pytest.approx([1000 * s for s in DISTILLED_SIGMA_VALUES])]


class Residency:
    """Which of a model's modules are on the accelerator, from every ``.to()`` they get.

    With ``offload: model`` on CPU the accelerate hooks load a module with
    ``module.to(cpu:0)`` (the execution device) and offload it with ``.to("cpu")``,
    so the last move tells where a module "is", as it would on a GPU. One thing
    differs on CPU: accelerate offloads the previous module of its chain only when
    that module's parameters are not on "cpu", which on CPU they always are; the
    hook is given its GPU behaviour (offload the previous module before loading
    the next) so the chain moves modules as it does on a GPU.
    """

    def __init__(self, model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        from accelerate.hooks import CpuOffload, UserCpuOffloadHook

        self.on: set[str] = set()
        self.events: list[str] = []
        names = {
            id(m): n for n, m in model.base.components.items() if isinstance(m, torch.nn.Module)
        }
        real_to = torch.nn.Module.to

        def to(module: Any, *args: Any, **kwargs: Any) -> Any:
            name = names.get(id(module))
            device = torch._C._nn._parse_to(*args, **kwargs)[0]
            if name is not None and device is not None:
                loaded = device.type == "cpu" and device.index is not None
                (self.on.add if loaded else self.on.discard)(name)
            return real_to(module, *args, **kwargs)

        def pre_forward(hook: Any, module: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(hook.prev_module_hook, UserCpuOffloadHook):
                hook.prev_module_hook.offload()
            module.to(hook.execution_device)
            return args, kwargs

        vae_type = type(model.base.vae)
        real_encode = vae_type._encode

        def encode(vae: Any, *args: Any, **kwargs: Any) -> Any:
            self.events.append("vae_encode:" + ",".join(sorted(self.on - {"vae"})))
            return real_encode(vae, *args, **kwargs)

        monkeypatch.setattr(torch.nn.Module, "to", to)
        monkeypatch.setattr(CpuOffload, "pre_forward", pre_forward)
        monkeypatch.setattr(vae_type, "_encode", encode)
        self.handle = model.base.text_encoder.register_forward_pre_hook(
            lambda *_: self.events.append("text_encoder:" + ",".join(sorted(self.on)))
        )

    def close(self) -> None:
        self.handle.remove()


@pytest.fixture
def residency(offload_engine: LtxEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Residency]:
    ((_, model),) = offload_engine.models.values()
    model.free()  # start from the offloaded state (what every job leaves behind)
    watch = Residency(model, monkeypatch)
    yield watch
    watch.close()


@pytest.mark.parametrize(
    "endpoint, request_, inputs",
    [
        (
            "image-to-video",
            {"prompt": "a robot", "duration": 2, "resolution": "1920x1080", "fps": 24},
            ("image_uri",),
        ),
        (
            "extend",
            {"prompt": "the sea", "duration": 2.0, "mode": "end", "context": 1.0},
            ("video_uri",),
        ),
        ("video-to-video-reframe", {"resolution": "720x1280"}, ("video_uri",)),
    ],
)
def test_model_offload_frees_the_gpu_and_encodes_the_prompt_once(
    offload_engine: LtxEngine,
    files: dict[str, Path],
    tmp_path: Path,
    residency: Residency,
    endpoint: str,
    request_: dict[str, Any],
    inputs: tuple[str, ...],
) -> None:
    run(
        offload_engine, files, tmp_path / "o", endpoint, {**request_, "model": "two-stage"}, *inputs
    )
    # One prompt encoding per generation (stage 2 reuses stage 1's embeddings), with
    # nothing else on the GPU (the transformer is about 44 GB, Gemma 3 about 24 GB),
    # and neither of them on it while the VAE encodes an image or a whole clip.
    encodes = [e for e in residency.events if e.startswith("text_encoder:")]
    assert encodes == ["text_encoder:"], residency.events
    for event in residency.events:
        on_gpu = set(event.partition(":")[2].split(","))
        assert not on_gpu & {"transformer", "text_encoder"}, residency.events
    # After the job nothing of the model stays on the GPU, whichever pipeline ran.
    assert residency.on == set()


def test_vae_tiling_tiles_time_as_well(
    offload_engine: LtxEngine,
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ((_, model),) = offload_engine.models.values()
    vae = model.base.vae
    assert vae.use_tiling and vae.use_framewise_encoding and vae.use_framewise_decoding
    used: list[str] = []
    for name in ("_temporal_tiled_encode", "_temporal_tiled_decode"):
        real = getattr(vae, name)

        def spy(
            *args: Any, _real: Callable[..., Any] = real, _name: str = name, **kwargs: Any
        ) -> Any:
            used.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(vae, name, spy)
    # reframe: the whole 73-frame canvas is encoded (the hold) and the clip decoded
    run(
        offload_engine,
        files,
        tmp_path / "o",
        "video-to-video-reframe",
        {"model": "two-stage", "resolution": "720x1280"},
        "video_uri",
    )
    assert "_temporal_tiled_encode" in used and "_temporal_tiled_decode" in used


@pytest.fixture
def outputs_alive(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """For each generation of a job: how many earlier outputs were still alive when it began."""
    from ltxserve.engines.ltx import jobs

    real = jobs.run_generation
    earlier: list[weakref.ref[Any]] = []
    alive: list[int] = []

    def run_generation(*args: Any, **kwargs: Any) -> Any:
        alive.append(sum(ref() is not None for ref in earlier))
        out = real(*args, **kwargs)
        frames = out.decoded if out.decoded is not None else out.linear
        earlier.append(weakref.ref(frames._video))  # the decoder output, on the device
        return out

    monkeypatch.setattr(jobs, "run_generation", run_generation)
    return alive


def test_reframe_chunks_release_the_previous_clip(
    engine: LtxEngine, files: dict[str, Path], tmp_path: Path, outputs_alive: list[int]
) -> None:
    path = run(
        engine,
        files,
        tmp_path / "o",
        "video-to-video-reframe",
        {"model": "chunked", "resolution": "720x1280"},
        "video_uri",
    )
    check_video(path, 720, 1280, 24, 72, 3.0)
    assert outputs_alive == [0] * 5  # 72 frames in chunks of 17


def test_hdr_with_connector_embeddings_runs_the_distilled_recipe_in_chunks(
    engine: LtxEngine,
    files: dict[str, Path],
    tmp_path: Path,
    outputs_alive: list[int],
    per_call: list[list[float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    (_, model) = engine.models["hdr"]
    batches: list[int] = []
    handle = model.base.transformer.register_forward_pre_hook(
        lambda _, args, kwargs: batches.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        path = run(engine, files, tmp_path / "o", "video-to-video-hdr", {}, "video_uri")
    finally:
        handle.remove()
    with zipfile.ZipFile(path) as zf:
        assert len(zf.namelist()) == 72
    assert outputs_alive == [0] * 5
    # diffusers' HDR example: the 8 distilled sigmas, guidance off (batch 1, one pass a step)
    assert per_call == [pytest.approx([1000 * s for s in DISTILLED_SIGMA_VALUES])] * 5
    assert batches == [1] * 8 * 5


class LargestFloat32(TorchDispatchMode):
    """The element count of the largest float32 tensor any torch op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dtype == torch.float32:
                self.largest = max(self.largest, t.numel())
        return out


def test_the_reframe_hold_never_holds_the_clip_in_float32() -> None:
    """The canvas reaches the VAE in its dtype, built a few frames at a time."""
    from diffusers import LTX2Pipeline

    from ltxserve.engines.ltx.holds import PIXEL_CHUNK, video_hold

    frames, h, w = 40, 64, 96
    canvas = np.random.default_rng(0).integers(0, 256, (frames, h, w, 3), dtype=np.uint8)
    known = np.ones((h, w), bool)
    seen: dict[str, Any] = {}
    mode = LargestFloat32()

    def encode(pixels: Any) -> Any:
        seen.update(pixels=pixels.clone(), largest=mode.largest)
        latents = torch.zeros(1, 8, (frames - 1) // 8 + 1, h // 32, w // 32)
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: latents))

    vae = SimpleNamespace(
        dtype=torch.bfloat16,
        encode=encode,
        latents_mean=torch.zeros(8),
        latents_std=torch.ones(8),
        config=SimpleNamespace(scaling_factor=1.0),
    )
    pipe = SimpleNamespace(
        vae=vae,
        _execution_device=torch.device("cpu"),
        _pack_latents=LTX2Pipeline._pack_latents,
        _normalize_latents=LTX2Pipeline._normalize_latents,
        transformer_spatial_patch_size=1,
        transformer_temporal_patch_size=1,
    )
    with mode:
        video_hold(pipe, canvas, known, torch.Generator().manual_seed(0))
    want = torch.from_numpy(canvas).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    assert seen["pixels"].dtype == torch.bfloat16
    assert torch.equal(seen["pixels"], want.to(torch.bfloat16))  # same values, rounded once
    assert seen["largest"] <= PIXEL_CHUNK * h * w * 3 < canvas.size
