"""retake and extend: regenerate a window of, or add time to, an input video.

Both run ``LTX2ConditionPipeline`` with the input's own frames as conditions:
frames before the window at latent 0, frames after it as a keyframe clip at the
next latent boundary (retake), or the context clip next to the new part
(extend). Audio that must not change is held with latent replacement
(holds.py). Every output frame outside the regenerated part is the input frame
itself, copied at full quality; generated frames are scaled to the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ltxserve.engines.base import EngineResult, OutputFile
from ltxserve.engines.ltx.geometry import extend_span, frames_down, retake_span
from ltxserve.engines.ltx.holds import Hold, audio_hold
from ltxserve.engines.ltx.jobs import JobContext, generated_audio
from ltxserve.engines.ltx.media import (
    AUDIO_RATE,
    fit_length,
    iter_video_frames,
    read_audio,
    read_frames,
    splice,
)
from ltxserve.engines.ltx.output import Mp4Output, planned_samples
from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.requests import Extend, Retake

CONTEXT_SECONDS = 2.0  # retake: held input on each side of the window
EXTEND_CONTEXT_SECONDS = 3.0  # extend: default context when the request gives none


def _hold_factory(
    ctx: JobContext[Any],
    track: NDArray[np.float32],
    start: int,
    frames: int,
    held: NDArray[np.bool_],
) -> Any:
    fps = float(ctx.plan.fps)
    span = fit_length(track[:, round(start / fps * AUDIO_RATE) :], round(frames / fps * AUDIO_RATE))
    seed = ctx.seed + 1

    def hold(pipe: Any) -> Hold:
        return audio_hold(
            pipe, span, AUDIO_RATE, frames, fps, held, torch.Generator("cpu").manual_seed(seed)
        )

    return hold


def _condition(frames: NDArray[np.uint8], index: int) -> Any:
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    return LTX2VideoCondition(frames=frames, index=index, strength=1.0)


def retake(ctx: JobContext[Retake]) -> EngineResult:
    plan, req = ctx.plan, ctx.request
    video = Path(ctx.job.inputs["video_uri"])
    info = ctx.infos["video_uri"].video
    assert info is not None
    fps, total, t = float(info.fps), info.frames, ctx.temporal
    ws = round(req.start_time * fps)
    we = min(total, round((req.start_time + req.duration) * fps))
    if ws >= total:
        raise InvalidRequestError("start_time: the section starts after the end of the video")
    span = retake_span(total, ws, we, round(CONTEXT_SECONDS * fps), t)
    w, h, two = ctx.grid(plan.width, plan.height)
    if not req.replaces_video:  # the picture is held whole: one clip condition over the span
        conditions = [
            _condition(read_frames(video, w, h, span.start, span.frames, pad_to=span.frames), 0)
        ]
    else:
        conditions = []
        if span.pre:
            conditions.append(_condition(read_frames(video, w, h, span.start, span.pre), 0))
        if span.post:
            clip = read_frames(video, w, h, span.start + span.suffix_at, span.post)
            conditions.append(
                _condition(clip[: frames_down(len(clip), t)], (span.suffix_at - 1) // t + 1)
            )
    gen = ctx.generation("cond", w, h, span.frames, fps, two, conditions=conditions)
    track = read_audio(video)
    has_audio = track.shape[1] > 0
    if has_audio:
        held = np.ones(span.frames, bool)
        if req.replaces_audio:
            held[ws - span.start : we - span.start] = False
        gen.audio_hold = _hold_factory(ctx, track, span.start, span.frames, held)
    out = ctx.run(gen)
    audio = fit_length(track, planned_samples(plan))
    if plan.audio and req.replaces_audio:
        new = generated_audio(out, span.frames / fps)
        a0 = round((ws - span.start) / fps * AUDIO_RATE)
        a1 = round((we - span.start) / fps * AUDIO_RATE)
        audio = splice(audio, new[:, a0:a1], round(ws / fps * AUDIO_RATE))
    path = ctx.job.output_dir / "video.mp4"
    with Mp4Output(path, plan, audio if plan.audio else None) as mp4:
        for i, frame in enumerate(iter_video_frames(video)):
            if mp4.written >= plan.frames:
                break
            if req.replaces_video and ws <= i < we:
                mp4.write_frame(out.frames.video_frame(min(i - span.start, len(out.frames) - 1)))
            else:
                mp4.write_frame(frame)
        while mp4.written < plan.frames:  # probe counted more frames than decode yields
            mp4.write_frame(out.frames.video_frame(-1))
    ctx.progress(1.0)
    return EngineResult({"video_url": OutputFile(path, "video/mp4")}, {"engine": "ltx"})


def extend(ctx: JobContext[Extend]) -> EngineResult:
    plan, req = ctx.plan, ctx.request
    video = Path(ctx.job.inputs["video_uri"])
    info = ctx.infos["video_uri"].video
    assert info is not None
    fps, total, t = float(info.fps), info.frames, ctx.temporal
    mode = req.mode
    new = plan.frames - total
    context = round((req.context or EXTEND_CONTEXT_SECONDS) * fps)
    context = max(1, min(context, total, ctx.spec.max_frames - new - 2 * t))
    span = extend_span(mode, context, new, t)
    w, h, two = ctx.grid(plan.width, plan.height)
    ctx_start = total - span.context if mode == "end" else 0
    clip = read_frames(video, w, h, ctx_start, span.context, pad_to=span.context)
    index = 0 if mode == "end" else (span.context_at - 1) // t + 1
    gen = ctx.generation("cond", w, h, span.frames, fps, two, conditions=[_condition(clip, index)])
    track = read_audio(video)
    if plan.audio and track.shape[1]:
        held = np.zeros(span.frames, bool)
        held[span.context_at : span.context_at + span.context] = True
        padded = np.zeros((2, round(span.frames / fps * AUDIO_RATE)), np.float32)
        at = round(span.context_at / fps * AUDIO_RATE)
        part = track[:, round(ctx_start / fps * AUDIO_RATE) :][:, : padded.shape[1] - at]
        padded[:, at : at + part.shape[1]] = part
        gen.audio_hold = _hold_factory(ctx, padded, 0, span.frames, held)
    out = ctx.run(gen)
    new_frames = out.frames[span.new_at : span.new_at + new]
    audio = None
    if plan.audio:
        generated = generated_audio(out, span.frames / fps)
        a0 = round(span.new_at / fps * AUDIO_RATE)
        part = generated[:, a0 : a0 + round(new / fps * AUDIO_RATE)]
        kept = fit_length(track, round(total / fps * AUDIO_RATE))
        audio = np.concatenate([kept, part] if mode == "end" else [part, kept], axis=1)
    path = ctx.job.output_dir / "video.mp4"
    with Mp4Output(path, plan, audio) as mp4:
        if mode == "start":
            for frame in new_frames.video_frames():
                mp4.write_frame(frame)
        for frame in iter_video_frames(video):
            if mp4.written >= plan.frames - (new if mode == "end" else 0):
                break
            mp4.write_frame(frame)
        while mp4.written < plan.frames - (new if mode == "end" else 0):
            mp4.write_rgb(clip[-1])
        if mode == "end":
            for frame in new_frames.video_frames():
                mp4.write_frame(frame)
    ctx.progress(1.0)
    return EngineResult({"video_url": OutputFile(path, "video/mp4")}, {"engine": "ltx"})
