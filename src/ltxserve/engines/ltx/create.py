"""text-to-video, image-to-video, audio-to-video: a new clip from a prompt, frames or a track.

- text-to-video: ``LTX2Pipeline`` (video and audio generated together).
- image-to-video: ``LTX2ImageToVideoPipeline`` (first frame); with ``last_frame_uri``
  ``LTX2ConditionPipeline`` with the first frame at latent 0 and the last frame as
  a keyframe on the last latent.
- audio-to-video: ``LTX2Pipeline`` (or the image-to-video pipeline with ``image_uri``)
  with the input audio's latents held fixed through every step (see holds.py),
  so the video is denoised against the real soundtrack; the output carries the
  input audio itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ltxserve.engines.base import EngineResult, OutputFile
from ltxserve.engines.ltx.frames import DecodedFrames
from ltxserve.engines.ltx.geometry import frames_up, keyframe_start
from ltxserve.engines.ltx.holds import Hold, audio_hold
from ltxserve.engines.ltx.jobs import JobContext, generated_audio, time_map
from ltxserve.engines.ltx.media import AUDIO_RATE, fit_length, load_image, read_audio
from ltxserve.engines.ltx.output import Mp4Output
from ltxserve.jobs.contract.requests import AudioToVideo, TextToVideo


def _write(
    ctx: JobContext[Any], out_frames: DecodedFrames, scale: float, audio: NDArray[np.float32] | None
) -> EngineResult:
    plan = ctx.plan
    path = ctx.job.output_dir / "video.mp4"
    src = time_map(plan.frames, len(out_frames), scale)
    with Mp4Output(path, plan, audio if plan.audio else None) as mp4:
        for i in range(plan.frames):
            mp4.write_frame(out_frames.video_frame(src(i)))
            ctx.progress(0.9 + 0.1 * (i + 1) / plan.frames)
    return EngineResult(
        {"video_url": OutputFile(path, "video/mp4")}, {"engine": "ltx", "model": ctx.spec.name}
    )


def text_or_image_to_video(ctx: JobContext[TextToVideo]) -> EngineResult:
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    plan = ctx.plan
    w, h, two = ctx.grid(plan.width, plan.height)
    rate = ctx.rate_for(plan.duration, plan.fps)
    last_needed = math.ceil((plan.frames - 1) * rate / float(plan.fps))
    inputs = ctx.job.inputs
    if "last_frame_uri" in inputs:
        # The last frame is a keyframe on the last latent; its pixel index is a latent start.
        at = keyframe_start(max(last_needed, 1), ctx.temporal)
        frames = frames_up(at + 1, ctx.temporal)
        conditions = [
            LTX2VideoCondition(frames=load_image(inputs["image_uri"], "image_uri"), index=0),
            LTX2VideoCondition(
                frames=load_image(inputs["last_frame_uri"], "last_frame_uri"), index=-1
            ),
        ]
        gen = ctx.generation("cond", w, h, frames, rate, two, conditions=conditions)
        scale = at / max(plan.frames - 1, 1)
    else:
        frames = frames_up(last_needed + 1, ctx.temporal)
        scale = rate / float(plan.fps)
        if "image_uri" in inputs:
            image = load_image(inputs["image_uri"], "image_uri")
            gen = ctx.generation("i2v", w, h, frames, rate, two, image=image)
        else:
            gen = ctx.generation("t2v", w, h, frames, rate, two)
    out = ctx.run(gen)
    audio = generated_audio(out, plan.duration) if plan.audio else None
    return _write(ctx, out.frames, scale, audio)


def audio_to_video(ctx: JobContext[AudioToVideo]) -> EngineResult:
    plan = ctx.plan
    w, h, two = ctx.grid(plan.width, plan.height)
    rate = ctx.rate_for(plan.duration, plan.fps)
    frames = frames_up(math.ceil((plan.frames - 1) * rate / float(plan.fps)) + 1, ctx.temporal)
    track = read_audio(Path(ctx.job.inputs["audio_uri"]))
    span = fit_length(track, round(frames / rate * AUDIO_RATE))
    held = np.ones(frames, bool)
    extra: dict[str, Any] = {}
    kind = "t2v"
    if "image_uri" in ctx.job.inputs:
        kind, extra = "i2v", {"image": load_image(ctx.job.inputs["image_uri"], "image_uri")}
    gen = ctx.generation(kind, w, h, frames, rate, two, **extra)
    gen.guidance_scale = ctx.request.guidance_scale
    seed = ctx.seed

    def hold(pipe: Any) -> Hold:
        return audio_hold(
            pipe, span, AUDIO_RATE, frames, rate, held, torch.Generator("cpu").manual_seed(seed + 1)
        )

    gen.audio_hold = hold
    out = ctx.run(gen)
    audio = fit_length(track, round(plan.duration * AUDIO_RATE))
    return _write(ctx, out.frames, rate / float(plan.fps), audio)
