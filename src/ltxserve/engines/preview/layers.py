"""Things that move on their own over the camera's picture: sprites and particles.

Both draw straight into a Yuv420 frame, touching only the pixels they cover, so
their per-frame cost does not depend on the frame size.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ltxserve.media.yuv import Yuv420, composite, rgb_to_yuv

RGB = tuple[int, int, int]


class Sprite:
    """An RGBA picture converted once to YUV planes plus luma and chroma alpha."""

    def __init__(self, rgba: Image.Image) -> None:
        w, h = (rgba.width + 1) // 2 * 2, (rgba.height + 1) // 2 * 2
        if (w, h) != rgba.size:
            padded = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            padded.paste(rgba, (0, 0))
            rgba = padded
        self.width, self.height = w, h
        self.image = Yuv420.from_image(rgba.convert("RGB"))
        alpha = rgba.getchannel("A")
        self.alpha_y = np.asarray(alpha)
        self.alpha_c = np.asarray(alpha.resize((w // 2, h // 2), Image.Resampling.BOX))

    def draw(self, frame: Yuv420, cx: float, cy: float, opacity: float = 1.0) -> None:
        """Composite centred at (cx, cy) frame pixels; clipped at the frame's edges."""
        x = int(round(cx - self.width / 2)) // 2 * 2
        y = int(round(cy - self.height / 2)) // 2 * 2
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + self.width, frame.width), min(y + self.height, frame.height)
        if x1 <= x0 or y1 <= y0 or opacity <= 0.0:
            return
        sx, sy = x0 - x, y0 - y
        ay = self.alpha_y[sy : sy + y1 - y0, sx : sx + x1 - x0]
        ac = self.alpha_c[sy // 2 : (sy + y1 - y0) // 2, sx // 2 : (sx + x1 - x0) // 2]
        if opacity < 1.0:
            ay = (ay * opacity).astype(np.uint8)
            ac = (ac * opacity).astype(np.uint8)
        composite(frame.y[y0:y1, x0:x1], self.image.y[sy : sy + y1 - y0, sx : sx + x1 - x0], ay)
        cy0, cy1, cx0, cx1 = y0 // 2, y1 // 2, x0 // 2, x1 // 2
        sc = (slice(sy // 2, sy // 2 + cy1 - cy0), slice(sx // 2, sx // 2 + cx1 - cx0))
        composite(frame.u[cy0:cy1, cx0:cx1], self.image.u[sc], ac)
        composite(frame.v[cy0:cy1, cx0:cx1], self.image.v[sc], ac)


# kind: (count at 1080p, speed x, speed y (frame heights/s), sway, size px at 1080p, alpha)
PARTICLES: dict[str, tuple[int, float, float, float, tuple[int, int], float]] = {
    "snow": (260, 0.01, 0.09, 0.012, (2, 6), 0.9),
    "rain": (320, 0.12, 1.5, 0.0, (1, 2), 0.45),
    "stars": (380, 0.0, 0.0, 0.0, (1, 3), 0.9),
    "embers": (170, 0.0, -0.22, 0.015, (2, 5), 0.9),
    "bubbles": (120, 0.0, -0.12, 0.01, (3, 8), 0.55),
    "fireflies": (90, 0.0, 0.0, 0.03, (3, 6), 0.9),
    "petals": (130, 0.05, 0.08, 0.02, (3, 7), 0.85),
    "dust": (160, 0.035, 0.005, 0.006, (1, 3), 0.4),
}


class Particles:
    """A seeded swarm drifting in screen space; positions are a function of time only."""

    def __init__(
        self, kind: str, seed: int, width: int, height: int, colours: tuple[RGB, ...]
    ) -> None:
        count, vx, vy, sway, (smin, smax), alpha = PARTICLES.get(kind, PARTICLES["dust"])
        rng = np.random.default_rng(seed ^ 0x9A27)
        scale = height / 1080
        n = max(12, round(count * math.sqrt(width * height / (1920 * 1080))))
        self.kind, self.width, self.height = kind, width, height
        self.x0, self.y0 = rng.random(n), rng.random(n)
        speed = rng.uniform(0.6, 1.4, n)
        self.vx = vx * speed * height / width
        self.vy = vy * speed
        self.sway = sway * rng.uniform(0.5, 1.5, n)
        self.freq = rng.uniform(0.2, 0.8, n) * 2 * math.pi
        self.phase = rng.uniform(0, 2 * math.pi, n)
        self.alpha = alpha * rng.uniform(0.6, 1.0, n)
        sizes = np.maximum(1, np.round(rng.uniform(smin, smax, n) * scale)).astype(np.intp)
        self.groups = [
            (np.flatnonzero(sizes == s), np.array(self._footprint(s, scale)))
            for s in np.unique(sizes)
        ]
        palette = [rgb_to_yuv(c) for c in colours]
        pick = rng.integers(0, len(palette), n)
        self.yuv = np.array(palette, np.float32)[pick]

    def _footprint(self, size: int, scale: float) -> list[tuple[int, int]]:
        if self.kind == "rain":
            length = max(3, round(26 * scale))
            return [(round(k * 0.08), k) for k in range(length)]
        r = size / 2
        return [
            (dx, dy)
            for dy in range(size)
            for dx in range(size)
            if (dx - r + 0.5) ** 2 + (dy - r + 0.5) ** 2 <= r * r + 0.5
        ]

    def draw(self, frame: Yuv420, t: float) -> None:
        w, h = self.width, self.height
        wobble = self.sway * np.sin(self.freq * t + self.phase)
        fx = np.mod(self.x0 + self.vx * t + wobble, 1.0)
        fy = np.mod(self.y0 + self.vy * t + (wobble * 0.5 if self.kind == "fireflies" else 0), 1.0)
        margin = 0.05
        xs = ((fx * (1 + 2 * margin) - margin) * w).astype(np.intp)
        ys = ((fy * (1 + 2 * margin) - margin) * h).astype(np.intp)
        alpha = self.alpha
        if self.kind in ("stars", "fireflies", "embers"):
            alpha = alpha * (0.55 + 0.45 * np.sin(self.freq * 3 * t + self.phase))
        for idx, offsets in self.groups:
            px, py, a = xs[idx], ys[idx], alpha[idx].astype(np.float32)
            val = self.yuv[idx]
            x = (px[:, None] + offsets[None, :, 0]).ravel()
            y = (py[:, None] + offsets[None, :, 1]).ravel()
            k = len(offsets)
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            x, y = x[ok], y[ok]
            ao, vo = np.repeat(a, k)[ok], np.repeat(val[:, 0], k)[ok]
            cur = frame.y[y, x].astype(np.float32)
            frame.y[y, x] = (cur + (vo - cur) * ao).astype(np.uint8)
            ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            xc, yc, ac = px[ok] // 2, py[ok] // 2, a[ok]
            for plane, ch in ((frame.u, 1), (frame.v, 2)):
                cur = plane[yc, xc].astype(np.float32)
                plane[yc, xc] = (cur + (val[ok, ch] - cur) * ac).astype(np.uint8)


def disc(
    diameter: int,
    colour: RGB,
    glow: float = 0.0,
    *,
    ring: RGB | None = None,
    crescent: bool = False,
) -> Image.Image:
    """A soft-edged disc (sun, moon, planet) as RGBA, with an optional glow halo and ring."""
    from PIL import ImageDraw, ImageFilter

    pad = max(int(diameter * glow), diameter // 3 if ring else 0) + 4
    size = diameter + 2 * pad
    img = Image.new("RGBA", (size, size), (*colour, 0))
    if glow > 0:
        halo = Image.new("L", (size, size), 0)
        ImageDraw.Draw(halo).ellipse(
            (pad // 2, pad // 2, size - pad // 2, size - pad // 2), fill=90
        )
        img.putalpha(halo.filter(ImageFilter.GaussianBlur(pad / 2.5)))
    body = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(body)
    draw.ellipse((pad, pad, pad + diameter, pad + diameter), fill=255)
    if crescent:
        off = diameter // 3
        draw.ellipse(
            (pad + off, pad - off // 3, pad + off + diameter, pad + diameter - off // 3), fill=0
        )
    body = body.filter(ImageFilter.GaussianBlur(max(1.0, diameter / 120)))
    img = Image.composite(Image.new("RGBA", (size, size), (*colour, 255)), img, body)
    if ring is not None:
        cy = size // 2
        ImageDraw.Draw(img).ellipse(
            (
                pad - diameter // 3,
                cy - diameter // 7,
                size - pad + diameter // 3,
                cy + diameter // 7,
            ),
            outline=(*ring, 230),
            width=max(2, diameter // 25),
        )
    return img
