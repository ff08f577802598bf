"""One generation through a diffusers LTX-2 pipeline, in one or two stages.

``Generation`` says what to make (pipeline kind, prompt, grid, conditions,
holds); ``run_generation`` picks the step schedule for the model, runs stage 1
(and, for large outputs with an upsampler configured, the latent upsampler and
a short stage 2 at twice the size), and returns frames and audio as arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ltxserve.engines.ltx.frames import RAW, DecodedFrames, LinearFrames
from ltxserve.engines.ltx.holds import Hold, step_callback
from ltxserve.engines.ltx.loader import LoadedModel
from ltxserve.engines.ltx.registry import ModelSpec

HoldFactory = Callable[[Any, int, int], Hold]  # (pipe, width, height) -> Hold


@dataclass
class Generation:
    kind: str  # t2v | i2v | cond | hdr (the pipeline)
    prompt: str
    width: int
    height: int
    frames: int
    fps: float
    two_stage: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # image=, conditions=, ...
    video_hold: HoldFactory | None = None
    audio_hold: Callable[[Any], Hold] | None = None
    guidance_scale: float | None = None  # a request's own (audio-to-video)
    seed: int = 0


@dataclass
class Output:
    decoded: DecodedFrames | None  # the video pipelines' frames, uint8 on demand
    audio: NDArray[np.float32] | None  # (2, n) at audio_rate
    audio_rate: int
    linear: LinearFrames | None = None  # hdr: scene-linear float32 on demand

    @property
    def frames(self) -> DecodedFrames:
        if self.decoded is None:
            raise TypeError("an HDR run has scene-linear frames only: see .scene_linear")
        return self.decoded

    @property
    def scene_linear(self) -> LinearFrames:
        if self.linear is None:
            raise TypeError("only an HDR run has scene-linear frames")
        return self.linear


def schedule(spec: ModelSpec, guidance: float | None) -> dict[str, Any]:
    """Step schedule and guidance: distilled = 8 fixed sigmas without CFG; full = CFG + STG."""
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    distilled = spec.schedule == "distilled"
    kw: dict[str, Any] = {"max_sequence_length": spec.max_sequence_length}
    if distilled and spec.steps is None:
        kw["sigmas"] = list(DISTILLED_SIGMA_VALUES)
        kw["num_inference_steps"] = len(DISTILLED_SIGMA_VALUES)
    else:
        kw["num_inference_steps"] = spec.steps or (8 if distilled else 30)
    g = guidance if guidance is not None else spec.guidance_scale
    kw["guidance_scale"] = g if g is not None else (1.0 if distilled else 3.0)
    stg = spec.stg_scale if spec.stg_scale is not None else (0.0 if distilled else 1.0)
    mod = spec.modality_scale if spec.modality_scale is not None else (1.0 if distilled else 3.0)
    ag = spec.audio_guidance_scale
    kw.update(
        stg_scale=stg,
        modality_scale=mod,
        audio_stg_scale=stg,
        audio_modality_scale=mod,
        audio_guidance_scale=ag if ag is not None else (1.0 if distilled else 7.0),
        spatio_temporal_guidance_blocks=spec.stg_blocks if stg > 0 else None,
    )
    if distilled or kw["guidance_scale"] <= 1:
        kw.update(guidance_rescale=0.0, audio_guidance_rescale=0.0)
    return kw


def _stage2(spec: ModelSpec) -> dict[str, Any]:
    from diffusers.pipelines.ltx2.utils import STAGE_2_DISTILLED_SIGMA_VALUES

    sigmas = list(spec.stage2_sigmas or STAGE_2_DISTILLED_SIGMA_VALUES)
    return {
        "sigmas": sigmas,
        "num_inference_steps": len(sigmas),
        "noise_scale": sigmas[0],
        "guidance_scale": 1.0,
        "stg_scale": 0.0,
        "modality_scale": 1.0,
        "audio_guidance_scale": 1.0,
        "audio_stg_scale": 0.0,
        "audio_modality_scale": 1.0,
        "guidance_rescale": 0.0,
        "audio_guidance_rescale": 0.0,
        "spatio_temporal_guidance_blocks": None,
        "max_sequence_length": spec.max_sequence_length,
    }


def _call(
    model: LoadedModel,
    spec: ModelSpec,
    gen: Generation,
    width: int,
    height: int,
    sched: dict[str, Any],
    on_step: Callable[[int, int], None],
    output_type: str,
    **more: Any,
) -> Any:
    pipe = model.pipe(gen.kind)
    generator = torch.Generator("cpu").manual_seed(gen.seed)
    video = gen.video_hold(pipe, width, height) if gen.video_hold else None
    audio = gen.audio_hold(pipe) if gen.audio_hold and gen.kind != "hdr" else None
    callback, inputs = step_callback(video, audio, on_step)
    if audio is not None and "audio_latents" not in pipe._callback_tensor_inputs:
        pipe._callback_tensor_inputs = [*pipe._callback_tensor_inputs, "audio_latents"]
    kwargs: dict[str, Any] = dict(
        prompt=gen.prompt,
        height=height,
        width=width,
        num_frames=gen.frames,
        frame_rate=float(gen.fps),
        generator=generator,
        output_type=output_type,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=inputs,
        return_dict=True,
        **gen.extra,
        **sched,
        **more,
    )
    if kwargs.get("guidance_scale", 1.0) > 1:
        kwargs["negative_prompt"] = spec.negative_prompt
    if gen.kind == "hdr":
        for key in [k for k in kwargs if k.startswith("audio_") or k == "modality_scale"]:
            if key != "audio_latents":
                kwargs.pop(key)
    return pipe(**kwargs)


def run_generation(
    model: LoadedModel, spec: ModelSpec, gen: Generation, progress: Callable[[float], None]
) -> Output:
    """Run ``gen``; progress goes from 0 to 1 over the denoising steps of all stages."""
    sched = schedule(spec, gen.guidance_scale)
    upsampler = model.upsampler(spec) if gen.two_stage else None
    share = 0.75 if upsampler is not None else 1.0

    def stage_progress(lo: float, hi: float) -> Callable[[int, int], None]:
        return lambda i, n: progress(lo + (hi - lo) * i / max(n, 1))

    if gen.kind == "hdr":
        model.use_loras(spec.hdr_lora)
    else:
        model.use_loras()
    if upsampler is None:
        out = _call(model, spec, gen, gen.width, gen.height, sched, stage_progress(0, 1), RAW)
        return _collect(model, gen, out)
    w1, h1 = gen.width // 2, gen.height // 2
    first = _call(model, spec, gen, w1, h1, sched, stage_progress(0, share), "latent")
    up = upsampler(
        latents=first.frames,
        height=h1,
        width=w1,
        num_frames=gen.frames,
        output_type="latent",
        return_dict=True,
    ).frames
    model.use_loras(spec.stage2_lora)
    try:
        out = _call(
            model,
            spec,
            gen,
            gen.width,
            gen.height,
            _stage2(spec),
            stage_progress(share, 1),
            RAW,
            latents=up,
            audio_latents=first.audio,
        )
    finally:
        model.use_loras()
    return _collect(model, gen, out)


def _collect(model: LoadedModel, gen: Generation, out: Any) -> Output:
    if gen.kind == "hdr":
        postprocess = model.pipe("hdr").hdr_video_processor.postprocess_hdr_video
        return Output(None, None, 0, linear=LinearFrames(out.frames, postprocess))
    frames = DecodedFrames(out.frames)
    audio = out.audio
    if audio is None:
        return Output(frames, None, 0)
    rate = int(model.base.vocoder.config.output_sampling_rate)
    return Output(frames, audio[0].float().cpu().numpy().astype(np.float32), rate)
