"""text-to-video and image-to-video.

text-to-video: the prompt's world (see scene.py) under the requested camera move,
with the prompt as a caption for the first second and a prompt-derived
soundtrack when ``generate_audio``.

image-to-video: the first frame *is* the input picture, cover-fitted to the
output size (media/fit.py); the camera then moves over it (the picture is
mirror-extended so the move never shows an edge). With ``last_frame_uri`` a
second camera over the last picture arrives at rest on the last frame while the
two cross-fade, so the last frame *is* that picture. ``focus_shift`` blurs and,
with a last frame, sharpens again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ltxserve.engines.base import EngineResult, JsonValue, OutputFile
from ltxserve.engines.preview.audio import Synth
from ltxserve.engines.preview.camera import Pose, ease, margins, pose, shoot
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.output import encode, trim_heap
from ltxserve.engines.preview.prompt import camera_motion, choose_theme
from ltxserve.engines.preview.scene import soften
from ltxserve.engines.preview.shot import Shot
from ltxserve.jobs.contract.requests import ImageToVideo, TextToVideo
from ltxserve.media.fit import cover, load_image
from ltxserve.media.yuv import Yuv420, blend

I2V_STRENGTH = 0.6  # image-to-video moves are gentler than generated ones


def _result(ctx: Context[Any], **meta: JsonValue) -> EngineResult:
    return EngineResult(
        {"video_url": OutputFile(ctx.video_path(), "video/mp4")},
        {"engine": "preview", "seed": ctx.seed, **meta},
    )


def text_to_video(ctx: Context[TextToVideo]) -> EngineResult:
    plan = ctx.plan
    theme = choose_theme(ctx.prompt, ctx.seed)
    motion = camera_motion(theme, ctx.request.camera_motion, ctx.prompt)
    shot = Shot(theme, ctx.seed, plan.width, plan.height, motion, caption=ctx.prompt)
    n = plan.frames
    synth = Synth(theme, ctx.seed, ctx.samples_at(n)) if plan.audio else None

    def frames() -> Iterator[Yuv420]:
        for i in range(n):
            yield shot.render(float(i / plan.fps), i / max(1, n - 1))

    with ctx.writer() as writer:
        encode(writer, frames(), n, ctx.progress, synth.render if synth else None)
    return _result(ctx, theme=theme.name, camera_motion=motion)


def _relative(p: Pose, end: Pose) -> Pose:
    """``p`` seen from ``end``: the pose that reaches rest when ``p`` reaches ``end``."""
    return Pose(p.dx - end.dx, p.dy - end.dy, p.zoom / end.zoom, p.focus)


def _picture(ctx: Context[Any], field: str) -> tuple[Yuv420, Yuv420]:
    """(fitted picture, mirror-extended canvas around it)."""
    plan = ctx.plan
    fitted = Yuv420.from_image(
        cover(load_image(ctx.input(field), label=field), plan.width, plan.height)
    )
    mx, my = margins(plan.width, plan.height)
    return fitted, fitted.padded(mx, my)


def image_to_video(ctx: Context[ImageToVideo]) -> EngineResult:
    plan = ctx.plan
    theme = choose_theme(ctx.prompt, ctx.seed)
    motion = camera_motion(theme, ctx.request.camera_motion, ctx.prompt)
    first, first_canvas = _picture(ctx, "image_uri")
    last = _picture(ctx, "last_frame_uri") if "last_frame_uri" in ctx.job.inputs else None
    soft = None
    if motion == "focus_shift":
        soft = [
            Yuv420.from_image(soften(img.to_frame().to_image(), plan.height / 60))
            for img in (first, *(last[:1] if last else ()))
        ]
    trim_heap()  # the decoded pictures were big; give their memory back before encoding
    n = plan.frames
    end = pose(motion, 1.0, I2V_STRENGTH)
    synth = Synth(theme, ctx.seed, ctx.samples_at(n)) if plan.audio else None

    def view(
        fitted: Yuv420, canvas: Yuv420, blurred: Yuv420 | None, p: Pose, focus: float
    ) -> Yuv420:
        out = Yuv420(np.empty_like(fitted.data), plan.width, plan.height)
        if blurred is not None:
            blend(fitted, blurred, focus, out)
        else:
            shoot(canvas, out, p)
        return out

    def frames() -> Iterator[Yuv420]:
        for i in range(n):
            u = i / max(1, n - 1)
            p = pose(motion, u, I2V_STRENGTH)
            if last is None:
                yield view(first, first_canvas, soft[0] if soft else None, p, p.focus)
                continue
            bump = 4 * u * (1 - u)  # focus_shift with two stills: sharp, soft, sharp
            a = view(first, first_canvas, soft[0] if soft else None, p, bump)
            b = view(last[0], last[1], soft[1] if soft else None, _relative(p, end), bump)
            w = ease((u - 0.1) / 0.8)
            if w > 0.0:
                blend(a, b, w, a)
            yield a

    with ctx.writer() as writer:
        encode(writer, frames(), n, ctx.progress, synth.render if synth else None)
    return _result(ctx, theme=theme.name, camera_motion=motion, fit="cover")
