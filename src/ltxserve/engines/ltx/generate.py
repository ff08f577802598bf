"""One generation through a diffusers LTX-2 pipeline, in one or two stages.

``Generation`` says what to make (pipeline kind, prompt, grid, conditions,
holds); ``run_generation`` picks the step schedule for the model, runs stage 1
(and, for large outputs with an upsampler configured, the latent upsampler and
a short stage 2 at twice the size), and returns frames and audio as arrays.

As in diffusers' LTX-2 examples:

- explicit sigmas (the distilled schedule, stage 2) run through an unshifted copy of
  the scheduler (``use_dynamic_shifting=False, shift_terminal=None``); a dev
  checkpoint's own scheduler would shift them by sequence length a second time and
  stretch the last one to 0.1, so the model would be told other noise levels than
  the latents have;
- the prompt is encoded once per generation and both stages get the embeddings, so
  stage 2 never loads the text encoder;
- with ``offload: model`` the modules go back to the host after every call of a
  pipeline that does not own the offload hooks (``LoadedModel.free``).
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


def distilled_recipe(spec: ModelSpec) -> dict[str, Any]:
    """diffusers' distilled recipe exactly: the 8 distilled sigmas, no guidance of any kind."""
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    sigmas = list(DISTILLED_SIGMA_VALUES)
    return {"sigmas": sigmas, "num_inference_steps": len(sigmas), **_unguided(spec)}


def _unguided(spec: ModelSpec) -> dict[str, Any]:
    return {
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


def schedule(spec: ModelSpec, guidance: float | None, kind: str = "t2v") -> dict[str, Any]:
    """Step schedule and guidance: distilled = 8 fixed sigmas without CFG; full = CFG + STG.

    HDR on a distilled model always uses the distilled recipe, as diffusers' HDR example
    does (the registry refuses the HDR IC-LoRA and its embeddings on full models).
    """
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    distilled = spec.schedule == "distilled"
    if distilled and kind == "hdr":
        return distilled_recipe(spec)
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
        **_unguided(spec),
    }


@torch.no_grad()
def encode_prompt(model: LoadedModel, spec: ModelSpec, prompt: str, cfg: bool) -> dict[str, Any]:
    """The prompt's (and with CFG the negative prompt's) embeddings, as the pipelines take them."""
    base = model.base
    embeds, mask, negative, negative_mask = base.encode_prompt(
        prompt=prompt,
        negative_prompt=spec.negative_prompt if cfg else None,
        do_classifier_free_guidance=cfg,
        max_sequence_length=spec.max_sequence_length,
        device=base._execution_device,
    )
    out = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
    if cfg:
        out.update(negative_prompt_embeds=negative, negative_prompt_attention_mask=negative_mask)
    return out


def _call(
    model: LoadedModel,
    spec: ModelSpec,
    gen: Generation,
    width: int,
    height: int,
    sched: dict[str, Any],
    on_step: Callable[[int, int], None],
    output_type: str,
    embeds: dict[str, Any] | None,
    **more: Any,
) -> Any:
    pipe = model.pipe(gen.kind)
    if model.scheduler is not None:
        pipe.scheduler = model.fixed_scheduler if "sigmas" in sched else model.scheduler
    generator = torch.Generator("cpu").manual_seed(gen.seed)
    video = gen.video_hold(pipe, width, height) if gen.video_hold else None
    audio = gen.audio_hold(pipe) if gen.audio_hold and gen.kind != "hdr" else None
    callback, inputs = step_callback(video, audio, on_step)
    if audio is not None and "audio_latents" not in pipe._callback_tensor_inputs:
        pipe._callback_tensor_inputs = [*pipe._callback_tensor_inputs, "audio_latents"]
    kwargs: dict[str, Any] = dict(
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
    if embeds is not None:
        kwargs.update(embeds)
    elif "connector_video_embeds" not in gen.extra:
        kwargs["prompt"] = gen.prompt
    if gen.kind == "hdr":
        for key in [k for k in kwargs if k.startswith("audio_") or k == "modality_scale"]:
            if key != "audio_latents":
                kwargs.pop(key)
    try:
        return pipe(**kwargs)
    finally:
        if pipe is not model.base:
            model.free()


def run_generation(
    model: LoadedModel, spec: ModelSpec, gen: Generation, progress: Callable[[float], None]
) -> Output:
    """Run ``gen``; progress goes from 0 to 1 over the denoising steps of all stages."""
    sched = schedule(spec, gen.guidance_scale, gen.kind)
    upsampler = model.upsampler(spec) if gen.two_stage else None
    share = 0.75 if upsampler is not None else 1.0

    def stage_progress(lo: float, hi: float) -> Callable[[int, int], None]:
        return lambda i, n: progress(lo + (hi - lo) * i / max(n, 1))

    if gen.kind == "hdr":
        model.use_loras(spec.hdr_lora)
    else:
        model.use_loras()
    cfg = sched.get("guidance_scale", 1.0) > 1
    embeds = None
    if "connector_video_embeds" not in gen.extra:
        embeds = encode_prompt(model, spec, gen.prompt, cfg)
        model.free()  # Gemma 3 off the GPU before a hold's VAE encode or the transformer
    if upsampler is None:
        out = _call(
            model, spec, gen, gen.width, gen.height, sched, stage_progress(0, 1), RAW, embeds
        )
        return _collect(model, gen, out)
    w1, h1 = gen.width // 2, gen.height // 2
    first = _call(model, spec, gen, w1, h1, sched, stage_progress(0, share), "latent", embeds)
    try:
        up = upsampler(
            latents=first.frames,
            height=h1,
            width=w1,
            num_frames=gen.frames,
            output_type="latent",
            return_dict=True,
        ).frames
    finally:
        model.free()
    audio_latents = first.audio
    del first
    positive = (
        None
        if embeds is None
        else {k: v for k, v in embeds.items() if not k.startswith("negative_")}
    )
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
            positive,
            latents=up,
            audio_latents=audio_latents,
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
