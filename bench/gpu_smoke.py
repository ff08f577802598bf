"""GPU smoke check of the model engine: the tiny model through every endpoint on CUDA.

One command for the day a GPU is at hand. It builds the tiny random LTX-2 of
tests/engines/tiny_ltx.py (nothing is downloaded: the LTX-2.3 dev scheduler config,
a distilled copy, a stage-2 LoRA, an HDR IC-LoRA and its connector embeddings are
all made in code), then, for every offload mode (none, model, sequential) and every
dtype the registry allows on the device (bfloat16 on CUDA), loads the engine
through the same registry path as real weights and runs every endpoint:
text-to-video (one and two stages, full and distilled), image-to-video (first frame,
first and last frame), audio-to-video, retake, extend, video-to-video-hdr and
video-to-video-reframe.

For each job it reports the wall time and ``torch.cuda.max_memory_allocated`` per
stage (prompt encoding, each pipeline call, the latent upsampler) and for the whole
job, and it fails (exit 1, after running the rest) on any device or dtype mismatch:

- weights: the transformer and text encoder in the configured dtype; with offload
  ``none`` every module on the GPU;
- every transformer call: its inputs and outputs on the GPU, the latents it gets in
  the configured dtype;
- offload ``model``: the transformer is never on the GPU while the text encoder runs,
  and nothing of the model stays on the GPU after a job (the upsampler excepted);
- outputs: the planned size, frame count and audio.

It needs only the packages the ``ltx`` extra installs (and the repository, for the
tiny model), and works offline. Without CUDA it says so and exits 0 without
running anything (``--allow-cpu`` runs the same checks on CPU in float32, for the
project's own test of this script).

Usage: python bench/gpu_smoke.py [--device cuda] [--offload none,model,sequential]
                                 [--endpoints text-to-video,...] [--max-pixels N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENDPOINTS = (
    "text-to-video",
    "image-to-video",
    "audio-to-video",
    "retake",
    "extend",
    "video-to-video-hdr",
    "video-to-video-reframe",
)
OFFLOADS = ("none", "model", "sequential")


class Failures:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, message: str) -> None:
        if not ok and message not in self.items:
            self.items.append(message)
            print(f"  FAIL {message}", flush=True)


def make_inputs(d: Path) -> dict[str, Path]:
    from tests.core.media import png_bytes, wav_bytes, write_ramp_video

    (d / "in.png").write_bytes(png_bytes(64, 36))
    (d / "last.png").write_bytes(png_bytes(64, 36))
    (d / "tone.wav").write_bytes(wav_bytes(2.5))
    video = d / "in.mp4"  # 3 s at 24 fps with a tone
    write_ramp_video(video, 320, 180)
    return {
        "image_uri": d / "in.png",
        "last_frame_uri": d / "last.png",
        "audio_uri": d / "tone.wav",
        "video_uri": video,
    }


def make_weights(d: Path) -> dict[str, Path]:
    from tests.engines.tiny_ltx import (
        build_hdr_embeds,
        build_lora,
        build_tiny_ltx,
        distilled_copy,
    )

    dev = build_tiny_ltx(d / "ltx-2.3")
    distilled = distilled_copy(dev, d / "ltx-2.3-distilled")
    return {
        "dev": dev,
        "distilled": distilled,
        "stage2_lora": build_lora(dev, d / "loras" / "distilled-lora.safetensors"),
        "hdr_lora": build_lora(dev, d / "loras" / "hdr-lora.safetensors", seed=2),
        "hdr_embeds": build_hdr_embeds(distilled, d / "hdr-embeds.safetensors"),
    }


def registry(
    w: dict[str, Path], device: str, dtype: str, offload: str, max_pixels: int | None
) -> dict[str, Any]:
    from tests.engines.tiny_ltx import MAX_SEQUENCE_LENGTH

    defaults = {
        "device": device,
        "dtype": dtype,
        "offload": offload,
        "vae_tiling": True,
        "steps": 2,
        "stg_blocks": [0],  # the tiny transformer has one block
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "max_pixels": max_pixels,
        "seed": 0,
    }
    return {
        "defaults": defaults,
        "models": {
            "ltx-2-3-pro": {  # full recipe: CFG, STG, modality guidance; two stages at 1080p
                "path": str(w["dev"]),
                "upsampler": str(w["dev"] / "latent_upsampler"),
                "stage2_lora": str(w["stage2_lora"]),
                "two_stage_min_pixels": 1920 * 1080 if max_pixels is None else 1,
            },
            "ltx-2-3-fast": {  # distilled recipe (8 sigmas), HDR IC-LoRA + embeddings
                "path": str(w["distilled"]),
                "schedule": "distilled",
                "steps": None,
                "hdr_lora": str(w["hdr_lora"]),
                "hdr_embeds": str(w["hdr_embeds"]),
            },
        },
        "endpoint_models": {"video-to-video-hdr": "ltx-2-3-fast"},
    }


def jobs(endpoints: set[str]) -> Iterator[tuple[str, str, dict[str, Any], tuple[str, ...]]]:
    """(label, endpoint, request, input fields) of every job to run."""
    t2v = {"prompt": "a cat on the sea", "duration": 2, "fps": 24}
    table: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
        (
            "t2v pro 720p",
            "text-to-video",
            {**t2v, "model": "ltx-2-3-pro", "resolution": "1280x720"},
            (),
        ),
        (
            "t2v pro 1080p (2 stages)",
            "text-to-video",
            {**t2v, "model": "ltx-2-3-pro", "resolution": "1920x1080"},
            (),
        ),
        (
            "t2v fast 720p",
            "text-to-video",
            {**t2v, "model": "ltx-2-3-fast", "resolution": "1280x720"},
            (),
        ),
        (
            "i2v pro 1080p (2 stages)",
            "image-to-video",
            {**t2v, "model": "ltx-2-3-pro", "resolution": "1920x1080"},
            ("image_uri",),
        ),
        (
            "i2v first+last pro",
            "image-to-video",
            {**t2v, "model": "ltx-2-3-pro", "resolution": "1280x720"},
            ("image_uri", "last_frame_uri"),
        ),
        (
            "a2v pro",
            "audio-to-video",
            {"prompt": "music", "model": "ltx-2-3-pro", "resolution": "1280x720"},
            ("audio_uri",),
        ),
        (
            "retake pro",
            "retake",
            {"prompt": "a dog", "start_time": 1.0, "duration": 1.0, "model": "ltx-2-3-pro"},
            ("video_uri",),
        ),
        (
            "extend pro",
            "extend",
            {"prompt": "the sea", "duration": 2.0, "mode": "end", "model": "ltx-2-3-pro"},
            ("video_uri",),
        ),
        ("hdr (fast, IC-LoRA)", "video-to-video-hdr", {}, ("video_uri",)),
        (
            "reframe pro",
            "video-to-video-reframe",
            {"model": "ltx-2-3-pro", "resolution": "720x1280"},
            ("video_uri",),
        ),
    ]
    for row in table:
        if row[1] in endpoints:
            yield row


class Probe:
    """Per-stage peak memory and the device/dtype checks, hooked into one loaded engine."""

    def __init__(
        self, engine: Any, device: str, dtype: Any, offload: str, failures: Failures
    ) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")
        self.device_type = "cuda" if self.cuda else "cpu"
        self.dtype = dtype
        self.offload = offload
        self.fail = failures
        self.stages: list[tuple[str, float]] = []
        self.handles: list[Any] = []
        self.models = list({id(m): m for _, m in engine.models.values()}.values())
        for model in self.models:
            self._watch(model)

    def _watch(self, model: Any) -> None:
        base = model.base
        check = self.fail.check
        for name in ("transformer", "text_encoder"):
            params = [p for p in getattr(base, name).parameters() if p.is_floating_point()]
            wrong = {str(p.dtype) for p in params if p.dtype != self.dtype}
            check(not wrong, f"{name} weights in {sorted(wrong)}, not {self.dtype}")
        if self.offload == "none":
            for name, module in base.components.items():
                if isinstance(module, self.torch.nn.Module):
                    devices = {p.device.type for p in module.parameters()}
                    check(
                        devices <= {self.device_type}, f"offload none: {name} on {sorted(devices)}"
                    )

        def inputs(_: Any, args: Any, kwargs: dict[str, Any]) -> None:
            for key, value in kwargs.items():
                if isinstance(value, self.torch.Tensor) and value.is_floating_point():
                    check(
                        value.device.type == self.device_type,
                        f"transformer input {key} on {value.device}",
                    )
            hidden = kwargs.get("hidden_states")
            if hidden is not None:
                check(
                    hidden.dtype == self.dtype,
                    f"transformer hidden_states in {hidden.dtype}, not {self.dtype}",
                )

        def outputs(_: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
            for value in out if isinstance(out, tuple) else (out,):
                if isinstance(value, self.torch.Tensor):
                    check(
                        value.device.type == self.device_type,
                        f"transformer output on {value.device}",
                    )

        def encoding(*_: Any) -> None:
            if self.cuda and self.offload == "model":
                on = {p.device.type for p in base.transformer.parameters()}
                check(
                    "cuda" not in on,
                    "offload model: the transformer is on the GPU while the text encoder runs",
                )

        self.handles += [
            base.transformer.register_forward_pre_hook(inputs, with_kwargs=True),
            base.transformer.register_forward_hook(outputs, with_kwargs=True),
            base.text_encoder.register_forward_pre_hook(encoding),
        ]

    def after_job(self, label: str) -> None:
        if not (self.cuda and self.offload == "model"):
            return
        for model in self.models:
            for name, module in model.base.components.items():
                if isinstance(module, self.torch.nn.Module):
                    on = {p.device.type for p in module.parameters()}
                    self.fail.check(
                        "cuda" not in on, f"offload model: {name} still on the GPU after {label}"
                    )

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        try:
            yield
        finally:
            peak = self.torch.cuda.max_memory_allocated() / 2**20 if self.cuda else float("nan")
            self.stages.append((name, peak))

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@contextmanager
def staged(probe: Probe) -> Iterator[None]:
    """Wrap the engine's pipeline calls, prompt encoding and upsampler in probe.stage()."""
    from ltxserve.engines.ltx import generate

    real_call, real_encode = generate._call, generate.encode_prompt

    def call(model: Any, spec: Any, gen: Any, width: int, height: int, *a: Any, **k: Any) -> Any:
        with probe.stage(f"{gen.kind} {width}x{height}x{gen.frames}"):
            return real_call(model, spec, gen, width, height, *a, **k)

    def encode(*a: Any, **k: Any) -> Any:
        with probe.stage("prompt encoding"):
            return real_encode(*a, **k)

    generate._call, generate.encode_prompt = call, encode  # type: ignore[assignment]
    upsamplers = [(m, key, up) for m in probe.models for key, up in m.upsamplers.items()]
    for model, key, up in upsamplers:

        def upsample(*a: Any, _up: Callable[..., Any] = up, **k: Any) -> Any:
            with probe.stage("latent upsampler"):
                return _up(*a, **k)

        model.upsamplers[key] = upsample
    try:
        yield
    finally:
        generate._call, generate.encode_prompt = real_call, real_encode  # type: ignore[assignment]
        for model, key, up in upsamplers:
            model.upsamplers[key] = up


def check_output(path: Path, endpoint: str, fail: Failures, label: str) -> None:
    import zipfile

    from ltxserve.media.probe import probe

    if endpoint == "video-to-video-hdr":
        with zipfile.ZipFile(path) as zf:
            fail.check(len(zf.namelist()) == 72, f"{label}: {len(zf.namelist())} EXR frames")
        return
    info = probe(path)
    fail.check(info.video is not None and info.video.frames > 0, f"{label}: no video")


def mib(value: float) -> str:
    return "n/a" if value != value else f"{value:.0f}"  # NaN: no CUDA memory statistics


def run_config(
    w: dict[str, Path],
    inputs: dict[str, Path],
    device: str,
    dtype_name: str,
    offload: str,
    endpoints: set[str],
    max_pixels: int | None,
    work: Path,
    fail: Failures,
) -> list[tuple[str, ...]]:
    import torch

    from ltxserve.config import Settings
    from ltxserve.engines.dispatch import run_job
    from ltxserve.engines.ltx import LtxEngine
    from ltxserve.engines.ltx.registry import load_registry

    reg_path = work / f"models-{offload}-{dtype_name}.json"
    reg_path.write_text(json.dumps(registry(w, device, dtype_name, offload, max_pixels)))
    rows: list[tuple[str, ...]] = []
    started = time.monotonic()
    engine = LtxEngine(Settings(), load_registry(reg_path))
    engine.load()
    rows.append((offload, dtype_name, "load", "", f"{time.monotonic() - started:.1f}", ""))
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype_name]
    probe = Probe(engine, device, dtype, offload, fail)
    try:
        for n, (label, endpoint, request, fields) in enumerate(jobs(endpoints)):
            out = work / f"out-{offload}-{dtype_name}-{n}"
            out.mkdir()
            paths = {f: inputs[f] for f in fields}
            probe.stages.clear()
            if probe.cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.monotonic()
            try:
                with staged(probe):
                    result = run_job(
                        engine, f"smoke-{n}", endpoint, request, paths, out, lambda _: None
                    )
            except Exception as exc:  # noqa: BLE001 - reported, the rest still runs
                fail.check(False, f"{offload}/{dtype_name} {label}: {type(exc).__name__}: {exc}")
                continue
            wall = time.monotonic() - t0
            total = torch.cuda.max_memory_allocated() / 2**20 if probe.cuda else float("nan")
            (output,) = result.outputs.values()
            check_output(output.path, endpoint, fail, f"{offload}/{dtype_name} {label}")
            probe.after_job(label)
            stages = "; ".join(f"{name} {mib(peak)}" for name, peak in probe.stages)
            rows.append((offload, dtype_name, label, mib(total), f"{wall:.1f}", stages))
            print(f"  {label}: {wall:.1f} s, peak {mib(total)} MiB", flush=True)
    finally:
        probe.close()
        del engine
        if probe.cuda:
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--offload", default=",".join(OFFLOADS))
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="cap the generation area (default: generate at the output size)",
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run on CPU in float32 (this script's own test; not a GPU check)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the work files here")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("gpu_smoke: needs the 'ltx' extra (torch, diffusers, ...): pip install -e '.[ltx]'")
        return 1
    device = args.device
    if not torch.cuda.is_available():
        if not args.allow_cpu:
            print("gpu_smoke: needs CUDA (torch.cuda.is_available() is False); nothing was run.")
            return 0
        device = "cpu"
    from ltxserve.engines.ltx.loader import offline
    from ltxserve.engines.ltx.registry import allowed_dtypes

    offline()
    offloads = [o for o in args.offload.split(",") if o]
    endpoints = {e for e in args.endpoints.split(",") if e}
    unknown = (set(offloads) - set(OFFLOADS)) | (endpoints - set(ENDPOINTS))
    if unknown:
        parser.error(f"unknown offload mode or endpoint: {', '.join(sorted(unknown))}")
    if device.startswith("cuda"):
        print(
            f"gpu_smoke: {torch.cuda.get_device_name(device)}, torch {torch.__version__}",
            flush=True,
        )
    work = Path(tempfile.mkdtemp(prefix="ltx-gpu-smoke-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    fail = Failures()
    rows: list[tuple[str, ...]] = []
    try:
        weights = make_weights(work / "weights")
        inputs = make_inputs(work)
        for offload in offloads:
            for dtype in allowed_dtypes(device):
                if device == "cpu" and dtype != "float32":
                    continue  # CPU runs are the script's own test: float32 only
                print(f"offload {offload}, {dtype} on {device}", flush=True)
                rows += run_config(
                    weights, inputs, device, dtype, offload, endpoints, args.max_pixels, work, fail
                )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| offload | dtype | job | peak MiB | wall s | peak MiB per stage |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if fail.items:
        print(f"\ngpu_smoke: {len(fail.items)} failure(s):")
        for item in fail.items:
            print(f"  {item}")
        return 1
    print("\ngpu_smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
