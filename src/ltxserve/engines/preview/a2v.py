"""audio-to-video: a picture that moves with the sound, over the sound itself.

Length: the audio's duration at 25 fps (plan.py). Soundtrack: the input decoded,
resampled to 48 kHz stereo and re-encoded AAC-LC, sample for sample. Picture: the
input image cover-fitted (or, without one, the prompt's world) under a gentle
camera move (the prompt's, half strength) that bounces with the loudness, a
spectrum bar graph along the bottom and the waveform of the current frame's
audio across the middle.

The analysis runs on its own decoder in the render thread; the soundtrack is
read by the encoding loop from a second one, so neither waits for the other.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ltxserve.engines.base import EngineResult, OutputFile
from ltxserve.engines.preview.audio import RATE, Analyzer
from ltxserve.engines.preview.camera import margins, shoot
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.output import encode, trim_heap
from ltxserve.engines.preview.prompt import camera_motion, choose_theme
from ltxserve.engines.preview.shot import Shot
from ltxserve.jobs.contract.requests import AudioToVideo
from ltxserve.media.decode import AudioReader
from ltxserve.media.fit import cover, load_image
from ltxserve.media.yuv import Yuv420, rgb_to_yuv

BANDS = 48
STRENGTH = 0.5
BOUNCE = 0.025  # frame heights the picture jumps on a loud frame


def _bars(out: Yuv420, levels: NDArray[np.float64], colours: list[tuple[int, int, int]]) -> None:
    """Spectrum bars along the bottom 30%, translucent, even-aligned for chroma."""
    w, h = out.width, out.height
    slot = w / BANDS
    base = h - h // 20 // 2 * 2
    for i, level in enumerate(levels):
        height = int(level * h * 0.3) // 2 * 2
        if height < 2:
            continue
        x0 = int(i * slot + slot * 0.15) // 2 * 2
        x1 = max(x0 + 2, int((i + 1) * slot - slot * 0.15) // 2 * 2)
        y0 = base - height
        cy, cu, cv = colours[i]
        region = out.y[y0:base, x0:x1]
        region[:] = (region.astype(np.uint16) + cy * 3) // 4
        for plane, c in ((out.u, cu), (out.v, cv)):
            sub = plane[y0 // 2 : base // 2, x0 // 2 : x1 // 2]
            sub[:] = (sub.astype(np.uint16) + c * 3) // 4


def _waveform(out: Yuv420, mono: NDArray[np.float32]) -> None:
    w, h = out.width, out.height
    if len(mono) < 2:
        return
    xs = np.arange(w)
    samples = mono[(xs * (len(mono) - 1)) // max(1, w - 1)]
    ys = (h * 0.5 - np.clip(samples, -1, 1) * h * 0.22).astype(np.intp)
    thick = max(1, h // 360)
    for d in range(-thick, thick + 1):
        out.y[np.clip(ys + d, 0, h - 1), xs] = 235


def audio_to_video(ctx: Context[AudioToVideo]) -> EngineResult:
    plan = ctx.plan
    n = plan.frames
    theme = choose_theme(ctx.prompt, ctx.seed)
    motion = camera_motion(theme, prompt=ctx.prompt)
    if motion == "focus_shift":
        motion = "dolly_in"
    if "image_uri" in ctx.job.inputs:
        fitted = Yuv420.from_image(
            cover(load_image(ctx.input("image_uri"), label="image_uri"), plan.width, plan.height)
        )
        canvas = fitted.padded(*margins(plan.width, plan.height))
        shot = None
        trim_heap()
    else:
        shot = Shot(theme, ctx.seed, plan.width, plan.height, motion, strength=STRENGTH)
    palette = [theme.accents[i % 3] for i in range(BANDS)]
    colours = [rgb_to_yuv(c) for c in palette]

    def frames() -> Iterator[Yuv420]:
        from ltxserve.engines.preview.camera import Pose, pose

        analyzer = Analyzer(BANDS)
        pulse = 0.0
        with AudioReader(ctx.input("audio_uri")) as reader:
            for i in range(n):
                chunk = reader.read(ctx.samples_at(i + 1) - ctx.samples_at(i))
                levels, rms = analyzer.update(chunk)
                pulse = max(min(1.0, rms * 5), pulse * 0.8)
                u, lift = i / max(1, n - 1), -BOUNCE * pulse
                if shot is not None:
                    out = shot.render(i / float(plan.fps), u, lift=lift)
                else:
                    out = Yuv420(np.empty_like(fitted.data), plan.width, plan.height)
                    p = pose(motion, u, STRENGTH)
                    shoot(canvas, out, Pose(p.dx, p.dy + lift, p.zoom))
                _bars(out, levels, colours)
                _waveform(out, chunk.mean(axis=0))
                yield out

    with (
        AudioReader(ctx.input("audio_uri")) as sound,
        ctx.writer() as writer,
    ):
        encode(writer, frames(), n, ctx.progress, lambda _start, count: sound.read(count))
    return EngineResult(
        {"video_url": OutputFile(ctx.video_path(), "video/mp4")},
        {
            "engine": "preview",
            "seed": ctx.seed,
            "theme": theme.name,
            "camera_motion": motion,
            "audio_rate": RATE,
        },
    )
