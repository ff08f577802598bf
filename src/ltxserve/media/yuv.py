"""YUV 4:2:0 images as numpy planes: the cheap per-frame currency of the preview engine.

A :class:`Yuv420` owns one packed ``(H*3/2, W)`` uint8 buffer laid out exactly as
PyAV's ``yuv420p`` ndarray (the Y plane, then U, then V, back to back), with
``y``, ``u`` and ``v`` as views into it. Frames built this way go to the H.264 encoder without any
colour conversion, and pixel-wise operations (blend, composite) run once over
the packed buffer instead of three times.

Colour conversion from RGB goes through swscale with its defaults (BT.601
matrix, limited range), the same convention VideoWriter.write_frame and PyAV's
``to_ndarray(format="rgb24")`` use, so RGB in and RGB out round-trip.

Sampling is nearest-neighbour on purpose: a camera move over a smooth canvas
hides its steps, and it costs a gather instead of a filter per frame.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray
from PIL import Image

U8 = NDArray[np.uint8]
STRIP = 256  # rows per step of a resampling pass


class Yuv420:
    """A yuv420p image (even width and height) backed by one packed buffer."""

    __slots__ = ("data", "y", "u", "v", "width", "height")

    def __init__(self, data: U8, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
        if data.shape != (height * 3 // 2, width):
            raise ValueError(f"buffer shape {data.shape} does not fit {width}x{height}")
        self.data = data
        self.width, self.height = width, height
        flat = data.reshape(-1)
        luma, quarter = width * height, width * height // 4
        self.y = data[:height]
        self.u = flat[luma : luma + quarter].reshape(height // 2, width // 2)
        self.v = flat[luma + quarter :].reshape(height // 2, width // 2)

    @classmethod
    def from_frame(cls, frame: av.VideoFrame) -> Yuv420:
        """Copy a decoded frame (any pixel format; converted to yuv420p when needed)."""
        if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2:
            frame = frame.reformat(
                width=frame.width // 2 * 2, height=frame.height // 2 * 2, format="yuv420p"
            )
        arr = np.ascontiguousarray(frame.to_ndarray(), dtype=np.uint8)
        return cls(arr, frame.width, frame.height)

    @classmethod
    def from_rgb(cls, rgb: U8) -> Yuv420:
        """Convert an HxWx3 uint8 RGB array (swscale defaults, as VideoWriter does)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        return cls.from_frame(frame)

    @classmethod
    def from_image(cls, image: Image.Image) -> Yuv420:
        return cls.from_rgb(np.asarray(image.convert("RGB")))

    def to_frame(self) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(self.data, format="yuv420p")

    def copy(self) -> Yuv420:
        return Yuv420(self.data.copy(), self.width, self.height)

    def resized(self, width: int, height: int, scaler: VideoReformatter | None = None) -> Yuv420:
        """Bilinear resize through swscale.

        A ``scaler`` kept by the caller reuses its swscale context from call to
        call; building one costs more than a 1080p resize itself.
        """
        if (width, height) == (self.width, self.height):
            return self.copy()
        frame = (scaler or VideoReformatter()).reformat(
            self.to_frame(), width=width, height=height, format="yuv420p", interpolation="BILINEAR"
        )
        return Yuv420.from_frame(frame)

    def crop(self, x: int, y: int, width: int, height: int) -> Yuv420:
        """A copy of the even-aligned rectangle at (x, y)."""
        x, y = x // 2 * 2, y // 2 * 2
        out = Yuv420(np.empty((height * 3 // 2, width), np.uint8), width, height)
        out.y[:] = self.y[y : y + height, x : x + width]
        out.u[:] = self.u[y // 2 : (y + height) // 2, x // 2 : (x + width) // 2]
        out.v[:] = self.v[y // 2 : (y + height) // 2, x // 2 : (x + width) // 2]
        return out

    def paste(self, other: Yuv420 | av.VideoFrame, x: int, y: int) -> None:
        """Copy ``other`` (an image or a yuv420p frame) in at (x, y) (even), inside this."""
        w, h = other.width, other.height
        py, pu, pv = (
            (other.y, other.u, other.v) if isinstance(other, Yuv420) else frame_planes(other)
        )
        self.y[y : y + h, x : x + w] = py
        self.u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = pu
        self.v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = pv

    def padded(self, mx: int, my: int, mode: str = "reflect") -> Yuv420:
        """Extend every side by (mx, my) pixels (even), mirroring the edge by default."""
        mx, my = mx // 2 * 2, my // 2 * 2
        w, h = self.width + 2 * mx, self.height + 2 * my
        out = Yuv420(np.empty((h * 3 // 2, w), np.uint8), w, h)
        for src, dst, px, py in (
            (self.y, out.y, mx, my),
            (self.u, out.u, mx // 2, my // 2),
            (self.v, out.v, mx // 2, my // 2),
        ):
            dst[:] = pad_plane(src, py, py, px, px, mode)
        return out


def frame_planes(frame: av.VideoFrame) -> tuple[U8, U8, U8]:
    """Views (no copy) of a yuv420p frame's Y, U and V planes, line padding cut off."""
    w, h = frame.width, frame.height
    out = []
    for plane, pw, ph in zip(frame.planes, (w, w // 2, w // 2), (h, h // 2, h // 2), strict=True):
        flat = np.frombuffer(memoryview(plane), np.uint8)
        out.append(flat[: plane.line_size * ph].reshape(ph, plane.line_size)[:, :pw])
    return out[0], out[1], out[2]


def pad_plane(plane: U8, top: int, bottom: int, left: int, right: int, mode: str = "reflect") -> U8:
    """np.pad that keeps working when a pad exceeds the plane (mirrors repeatedly)."""
    out = plane
    while top > 0 or bottom > 0 or left > 0 or right > 0:
        h, w = out.shape[0] - 1, out.shape[1] - 1
        t, b, lf, r = min(top, h), min(bottom, h), min(left, w), min(right, w)
        out = np.pad(out, ((t, b), (lf, r)), mode=mode)  # type: ignore[call-overload]
        top, bottom, left, right = top - t, bottom - b, left - lf, right - r
    return out


def sample_view(src: Yuv420, out: Yuv420, x0: float, y0: float, scale: float) -> None:
    """Fill ``out`` with the view of ``src`` whose top-left is (x0, y0) in source pixels.

    ``scale`` is source pixels per output pixel (< 1 zooms in). Positions outside
    the source clamp to its edge. Integer offsets at scale 1 are a plain copy
    (chroma then snaps to the even pixel at or left of/above the offset).
    """
    w, h = out.width, out.height
    xi, yi = round(x0), round(y0)
    if (
        abs(scale - 1.0) < 1e-9
        and abs(x0 - xi) < 1e-6
        and abs(y0 - yi) < 1e-6
        and 0 <= xi <= src.width - w
        and 0 <= yi <= src.height - h
    ):
        out.y[:] = src.y[yi : yi + h, xi : xi + w]
        cx, cy = xi // 2, yi // 2
        out.u[:] = src.u[cy : cy + h // 2, cx : cx + w // 2]
        out.v[:] = src.v[cy : cy + h // 2, cx : cx + w // 2]
        return
    _gather(src.y, out.y, x0, y0, scale)
    _gather(src.u, out.u, x0 / 2, y0 / 2, scale)
    _gather(src.v, out.v, x0 / 2, y0 / 2, scale)


def _gather(src: U8, dst: U8, x0: float, y0: float, scale: float) -> None:
    h, w = dst.shape
    box = (x0, y0, x0 + w * scale, y0 + h * scale)
    if box[0] >= 0 and box[1] >= 0 and box[2] <= src.shape[1] and box[3] <= src.shape[0]:
        # Pillow's nearest resize of a box is the fastest gather there is; in strips,
        # so its temporaries stay small at any frame size
        image = _l_image(src)
        for r0 in range(0, h, STRIP):
            r1 = min(h, r0 + STRIP)
            part = (x0, y0 + r0 * scale, x0 + w * scale, y0 + r1 * scale)
            dst[r0:r1] = np.asarray(image.resize((w, r1 - r0), Image.Resampling.NEAREST, box=part))
        return
    rows = np.clip(((np.arange(h) + 0.5) * scale + y0).astype(np.intp), 0, src.shape[0] - 1)
    cols = np.clip(((np.arange(w) + 0.5) * scale + x0).astype(np.intp), 0, src.shape[1] - 1)
    np.take(np.take(src, rows, axis=0), cols, axis=1, out=dst)


def _l_image(arr: U8) -> Image.Image:
    return Image.frombuffer(
        "L", (arr.shape[1], arr.shape[0]), np.ascontiguousarray(arr), "raw", "L", 0, 1
    )


def blend(a: Yuv420, b: Yuv420, weight: float, out: Yuv420) -> None:
    """out = a * (1 - weight) + b * weight, one pass over the packed buffers."""
    if weight <= 0.0:
        out.data[:] = a.data
    elif weight >= 1.0:
        out.data[:] = b.data
    else:
        out.data[:] = np.asarray(Image.blend(_l_image(a.data), _l_image(b.data), weight))


def composite(dst: U8, src: U8, mask: U8) -> None:
    """dst = src where mask is 255, dst where 0, blended between; in place."""
    dst[:] = np.asarray(Image.composite(_l_image(src), _l_image(dst), _l_image(mask)))


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """One colour, BT.601 limited range (swscale's default, as used for whole frames)."""
    r, g, b = rgb
    y = 16 + 0.2568 * r + 0.5041 * g + 0.0979 * b
    u = 128 - 0.1482 * r - 0.2910 * g + 0.4392 * b
    v = 128 + 0.4392 * r - 0.3678 * g - 0.0714 * b
    return round(y), round(u), round(v)
