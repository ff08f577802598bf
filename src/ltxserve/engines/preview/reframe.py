"""video-to-video-reframe: the input at a new aspect ratio, outpainted rather than letterboxed.

Each frame is contain-fitted (media/fit.py: scaled to fit inside, centered) and
the bands around it are filled with a mirrored extension of the same frame,
blurred and slightly darkened: made at 1/8 size (mirror, Gaussian blur), only
the bands scaled up, renewed every other frame; then the sharp frame is placed
between them. The fill therefore moves with the picture, continues its colours
across the seam, and costs little per frame.
Length, frame rate and sound are the input's (sound decoded and re-encoded).
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageFilter

from ltxserve.engines.base import EngineResult, OutputFile
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.output import encode
from ltxserve.jobs.contract.requests import VideoToVideoReframe
from ltxserve.media.decode import AudioReader, VideoReader
from ltxserve.media.fit import contain_rect
from ltxserve.media.yuv import Yuv420, pad_plane

SMALL = 8  # the fill is made at 1/SMALL of the output size
REFRESH = 2  # and renewed every REFRESH frames (it is blurred: 12 fps of it look the same)
DARKEN = 0.78


def _blur_plane(plane: np.ndarray, radius: float) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(plane))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)))


class Outpainter:
    """Contain-fit one frame and fill the bands around it (see the module docstring)."""

    def __init__(self, src_w: int, src_h: int, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rect = contain_rect(src_w, src_h, width, height)
        self.small = (max(4, width // SMALL // 2 * 2), max(4, height // SMALL // 2 * 2))
        self.small_rect = contain_rect(src_w, src_h, *self.small)
        self.radius = max(1.0, self.small[1] / 30)
        self.darken = np.clip(16 + (np.arange(256) - 16) * DARKEN, 0, 255).astype(np.uint8)
        self.bands = self._bands()
        self._fill: list[Yuv420] = []
        self._count = 0
        # one swscale context per job of scaling, built once (a build costs more than a scale)
        self._sharp, self._shrink = VideoReformatter(), VideoReformatter()
        self._grow = [VideoReformatter() for _ in self.bands]

    def _bands(self) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
        """(output rect, small-fill rect) pairs covering everything outside the picture."""
        x, y, w, h = self.rect
        sx, sy, sw, sh = self.small_rect
        big_w, big_h = self.width, self.height
        small_w, small_h = self.small
        if (w, h) == (big_w, big_h):
            return []
        if x == 0 and sx == 0 and sy > 0 and small_h - sy - sh > 0:  # letterbox: top, bottom
            return [
                ((0, 0, big_w, y), (0, 0, small_w, sy)),
                ((0, y + h, big_w, big_h - y - h), (0, sy + sh, small_w, small_h - sy - sh)),
            ]
        if y == 0 and sy == 0 and sx > 0 and small_w - sx - sw > 0:  # pillarbox: left, right
            return [
                ((0, 0, x, big_h), (0, 0, sx, small_h)),
                ((x + w, 0, big_w - x - w, big_h), (sx + sw, 0, small_w - sx - sw, small_h)),
            ]
        return [((0, 0, big_w, big_h), (0, 0, small_w, small_h))]

    def _small_fill(self, frame: av.VideoFrame) -> Yuv420:
        sw, sh = self.small
        x, y, w, h = self.small_rect
        small = Yuv420.from_frame(
            self._shrink.reformat(frame, width=w, height=h, format="yuv420p", interpolation="AREA")
        )
        bg = Yuv420(np.empty((sh * 3 // 2, sw), np.uint8), sw, sh)
        bg.y[:] = self.darken[
            _blur_plane(pad_plane(small.y, y, sh - h - y, x, sw - w - x), self.radius)
        ]
        for src, dst in ((small.u, bg.u), (small.v, bg.v)):
            dst[:] = _blur_plane(
                pad_plane(src, y // 2, (sh - h - y) // 2, x // 2, (sw - w - x) // 2),
                self.radius / 2,
            )
        return bg

    def frame(self, frame: av.VideoFrame) -> Yuv420 | av.VideoFrame:
        x, y, w, h = self.rect
        sharp = frame
        if (frame.width, frame.height, frame.format.name) != (w, h, "yuv420p"):
            smaller = w * h < frame.width * frame.height
            sharp = self._sharp.reformat(
                frame,
                width=w,
                height=h,
                format="yuv420p",
                interpolation="AREA" if smaller else "BICUBIC",
            )
        if not self.bands:
            return sharp
        if self._count % REFRESH == 0:
            bg = self._small_fill(frame)
            self._fill = [
                bg.crop(*src).resized(dst[2], dst[3], grow)
                for (dst, src), grow in zip(self.bands, self._grow, strict=True)
            ]
        self._count += 1
        out = Yuv420(
            np.empty((self.height * 3 // 2, self.width), np.uint8), self.width, self.height
        )
        for ((bx, by, _, _), _), band in zip(self.bands, self._fill, strict=True):
            out.paste(band, bx, by)
        out.paste(sharp, x, y)
        return out


def reframe(ctx: Context[VideoToVideoReframe]) -> EngineResult:
    plan = ctx.plan
    n = plan.frames

    def frames() -> Iterator[Yuv420 | av.VideoFrame]:
        with VideoReader(ctx.input("video_uri")) as reader:
            painter = Outpainter(reader.width, reader.height, plan.width, plan.height)
            last = None
            for frame in reader.frames():
                last = painter.frame(frame)
                yield last
            if last is not None:  # a stream shorter than its header says: hold the last frame
                while True:
                    yield last

    with (
        AudioReader(ctx.input("video_uri") if plan.audio else None, label="video_uri") as sound,
        ctx.writer() as writer,
    ):
        encode(writer, frames(), n, ctx.progress, lambda _pos, count: sound.read(count))
    return EngineResult(
        {"video_url": OutputFile(ctx.video_path(), "video/mp4")},
        {"engine": "preview", "fit": "contain", "fill": "mirror-blur"},
    )
