"""retake and extend: edits of an input video that leave the rest of it alone.

Both decode the input frame by frame and re-encode it; frames and audio outside
the edited span are the input's, passed through without any processing.

retake: inside [start_time, start_time + duration) (clamped to the video) the
picture (replace_video) and/or the sound (replace_audio) are replaced by the
prompt's generated shot and soundtrack, cross-fading over 0.3 s (picture) and
0.05 s (sound) *inside* the section so the cut is smooth and the outside exact.

extend: ``duration`` seconds are added before (mode start) or after (mode end).
The new part continues from the boundary frame: a slow camera drift over the
mirror-extended boundary frame that starts (or, before the input, ends) exactly
on it, leaning towards the prompt's world when there is a prompt. When the input
has sound, the new part gets the prompt's soundtrack, faded in at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from ltxserve.engines.base import EngineResult, JsonValue, OutputFile
from ltxserve.engines.preview.audio import RATE, Synth
from ltxserve.engines.preview.camera import ease, inverse, margins, pose, shoot
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.output import encode
from ltxserve.engines.preview.prompt import camera_motion, choose_theme, prompt_motion
from ltxserve.engines.preview.shot import Shot
from ltxserve.jobs.contract.requests import Extend, Retake
from ltxserve.media.decode import AudioReader, VideoReader
from ltxserve.media.yuv import Yuv420, blend

F32 = NDArray[np.float32]
VIDEO_FADE = 0.3  # seconds
AUDIO_FADE = 0.05
EXTEND_STRENGTH = 0.5
PROMPT_LEAN = 0.45  # how far an extension blends towards the prompt's world by its end


def _result(ctx: Context[Any], **meta: JsonValue) -> EngineResult:
    return EngineResult(
        {"video_url": OutputFile(ctx.video_path(), "video/mp4")},
        {"engine": "preview", "seed": ctx.seed, **meta},
    )


def _span_gain(s: NDArray[np.int64], a0: int, a1: int, fade: int) -> NDArray[np.float64]:
    """1 inside [a0, a1), ramping from 0 over ``fade`` samples at both inner edges."""
    g = np.minimum((s - a0 + 1) / fade, (a1 - s) / fade)
    return np.clip(g, 0.0, 1.0)


def retake(ctx: Context[Retake]) -> EngineResult:
    plan, req = ctx.plan, ctx.request
    n = plan.frames
    start = min(n, round(req.start_time * plan.fps))
    end = min(n, round((req.start_time + req.duration) * plan.fps))
    new_video = req.replaces_video and end > start
    new_audio = req.replaces_audio and end > start
    theme = choose_theme(ctx.prompt, ctx.seed)
    motion = camera_motion(theme, prompt=ctx.prompt)
    fade = max(1, round(VIDEO_FADE * float(plan.fps)))
    span = max(1, end - start)

    def frames() -> Iterator[Yuv420 | av.VideoFrame]:
        shot = None  # built when the section starts, on the render thread: the frames
        # before it are being encoded meanwhile
        with VideoReader(ctx.input("video_uri")) as reader:
            for i, frame in enumerate(reader.frames_at(plan.width, plan.height, count=n)):
                if not new_video or not start <= i < end:
                    yield frame
                    continue
                if shot is None:
                    shot = Shot(theme, ctx.seed, plan.width, plan.height, motion)
                k = i - start
                generated = shot.render(k / float(plan.fps), k / max(1, span - 1))
                w = min(1.0, (k + 1) / fade, (end - i) / fade)
                if w < 1.0:
                    blend(Yuv420.from_frame(frame), generated, w, generated)
                yield generated

    a0, a1 = ctx.samples_at(start), ctx.samples_at(end)
    synth = Synth(theme, ctx.seed, ctx.samples_at(n)) if new_audio else None
    afade = round(AUDIO_FADE * RATE)

    with (
        AudioReader(ctx.input("video_uri"), label="video_uri") as original,
        ctx.writer() as writer,
    ):

        def audio(pos: int, count: int) -> F32:
            chunk = original.read(count)
            if synth is not None and pos < a1 and pos + count > a0:
                s = np.arange(pos, pos + count)
                g = _span_gain(s, a0, a1, afade).astype(np.float32)
                chunk = chunk * (1 - g) + synth.render(pos, count) * g
            return chunk

        encode(writer, frames(), n, ctx.progress, audio)
    return _result(ctx, theme=theme.name, mode=req.mode, section_frames=[start, end])


def extend(ctx: Context[Extend]) -> EngineResult:
    plan, req = ctx.plan, ctx.request
    n = plan.frames
    video = ctx.infos["video_uri"].video
    assert video is not None
    n_in = min(video.frames, n)
    extra = n - n_in
    at_start = req.mode == "start"
    theme = choose_theme(ctx.prompt, ctx.seed)
    motion = prompt_motion(ctx.prompt) or "dolly_in"
    if motion in ("static", "focus_shift"):
        motion = "dolly_in"
    mx, my = margins(plan.width, plan.height)

    def continuation(boundary: Yuv420) -> Iterator[Yuv420]:
        # built here, on the render thread, where (mode end) it overlaps the encoding
        # of the input's frames
        shot = (
            Shot(theme, ctx.seed, plan.width, plan.height, camera_motion(theme))
            if ctx.prompt.strip()
            else None
        )
        canvas = boundary.padded(mx, my)
        for k in range(extra):
            # u runs away from the boundary: 0 at the boundary, 1 at the far end
            u = (k + 1) / extra if not at_start else (extra - k) / extra
            p = pose(motion, u, EXTEND_STRENGTH)
            if at_start:  # played forwards, the move arrives at rest on the boundary
                p = inverse(p)
            out = Yuv420(np.empty_like(boundary.data), plan.width, plan.height)
            shoot(canvas, out, p)
            if shot is not None:
                lean = PROMPT_LEAN * ease(u) ** 1.5
                if lean > 0.004:
                    blend(out, shot.render(k / float(plan.fps), u), lean, out)
            yield out

    def frames() -> Iterator[Yuv420 | av.VideoFrame]:
        with VideoReader(ctx.input("video_uri")) as reader:
            source = reader.frames_at(plan.width, plan.height, count=n_in)
            if at_start:
                first = next(source)
                yield from continuation(Yuv420.from_frame(first))
                yield first
                yield from source
            else:
                last = None
                for frame in source:
                    last = frame
                    yield frame
                assert last is not None
                yield from continuation(Yuv420.from_frame(last))

    in_samples = ctx.samples_at(n_in)
    total = ctx.samples_at(n)
    offset = ctx.samples_at(extra) if at_start else 0  # where the input's sound starts
    synth = Synth(theme, ctx.seed, total) if plan.audio else None
    afade = round(0.2 * RATE)

    with (
        AudioReader(ctx.input("video_uri") if plan.audio else None, label="video_uri") as original,
        ctx.writer() as writer,
    ):

        def audio(pos: int, count: int) -> F32:
            s = np.arange(pos, pos + count)
            own = (s >= offset) & (s < offset + in_samples)
            chunk = np.zeros((2, count), np.float32)
            k = int(own.sum())
            if k:
                chunk[:, own] = original.read(k)
            if synth is not None and k < count:
                if at_start:
                    g = np.clip((offset - s) / afade, 0, 1)
                else:
                    g = np.clip((s - (offset + in_samples) + 1) / afade, 0, 1)
                chunk += (synth.render(pos, count) * g).astype(np.float32)
            return chunk

        encode(writer, frames(), n, ctx.progress, audio)
    return _result(
        ctx,
        theme=theme.name,
        mode="start" if at_start else "end",
        camera_motion=motion,
        input_frames=n_in,
    )
