"""The world a text prompt describes, drawn once per job as a canvas larger than the frame.

Layers, back to front: a sky/ground gradient with soft cloud texture, a far
silhouette along the horizon (ridge, skyline or dunes), and a near layer of the
theme's shapes (waves, trees, buildings, ...). The canvas carries a margin on
every side for the camera to travel into. It is drawn with Pillow at a capped
design resolution (the look is soft; the cost and the memory of drawing stay flat
as the frame grows) and scaled to the canvas size in YUV.

For ``focus_shift`` two extra frames are made at rest: near layer sharp over a
blurred far layer, and the reverse; the renderer blends between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ltxserve.engines.preview.camera import margins
from ltxserve.engines.preview.layers import Particles, Sprite, disc
from ltxserve.engines.preview.prompt import RGB, Theme
from ltxserve.media.yuv import Yuv420

DESIGN_MAX = 2560  # widest canvas drawn at full resolution; wider canvases are scaled up
PARTICLE_COLOURS: dict[str, tuple[RGB, RGB]] = {
    "snow": ((255, 255, 255), (220, 230, 255)),
    "rain": ((190, 205, 230), (150, 170, 200)),
    "stars": ((255, 255, 255), (200, 210, 255)),
    "bubbles": ((210, 240, 255), (170, 220, 255)),
    "fireflies": ((230, 255, 140), (255, 240, 120)),
    "dust": ((255, 240, 210), (230, 220, 200)),
}


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


@dataclass
class World:
    canvas: Yuv420
    focus: tuple[Yuv420, Yuv420] | None  # (near sharp, far sharp) at rest
    hero: tuple[Sprite, Sprite] | None  # (sharp, blurred)
    hero_at: tuple[float, float]  # frame fractions at rest
    hero_drift: tuple[float, float]  # movement over the whole clip, frame fractions
    particles: Particles


def _gradient(top: RGB, bottom: RGB, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, max(n, 1))[:, None] ** 1.2
    return (np.array(top) * (1 - t) + np.array(bottom) * t).astype(np.uint8)


def _noise(rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    small = Image.fromarray((rng.random((cells[1], cells[0])) * 255).astype(np.uint8))
    return np.asarray(small.resize(size, Image.Resampling.BICUBIC), np.float32) / 255.0


def _ridge(
    rng: np.random.Generator, w: int, base: float, amp: float, waves: int = 3, jag: float = 0.0
) -> list[tuple[float, float]]:
    xs = np.linspace(0, w, 97)
    ys = np.full_like(xs, base)
    for k in range(waves):
        freq = (k + 1) * rng.uniform(0.8, 1.6) * 2 * math.pi / w
        ys -= amp / (k + 1) * np.sin(xs * freq + rng.uniform(0, 2 * math.pi))
    if jag:
        ys -= np.abs(rng.normal(0, jag, xs.shape))
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _draw_near(
    draw: ImageDraw.ImageDraw,
    theme: Theme,
    rng: np.random.Generator,
    w: int,
    h: int,
    horizon: float,
) -> None:
    a0, a1, a2 = theme.accents
    g0, g1 = theme.ground
    kind = theme.shapes
    if kind == "waves":
        for k in range(6):
            base = horizon + (h - horizon) * (k + 0.6) / 6
            pts = _ridge(rng, w, base, h * 0.025 * (1 + k * 0.3), waves=2)
            colour = _mix((a0, a2, g0)[k % 3], g1, k / 8)
            draw.polygon([*pts, (w, h), (0, h)], fill=(*colour, 255))
            draw.line(pts, fill=(*a1, 200), width=max(2, h // 300))
    elif kind in ("mountains", "hills", "dunes"):
        layers = 3
        for k in range(layers):
            base = horizon + (h - horizon) * (k * 0.3 + 0.15)
            amp = h * (0.12 if kind == "mountains" else 0.05) / (k + 1)
            pts = _ridge(
                rng,
                w,
                base,
                amp,
                waves=3 if kind != "dunes" else 2,
                jag=h * 0.012 if kind == "mountains" else 0.0,
            )
            colour = _mix(g0, g1, (k + 1) / layers)
            draw.polygon([*pts, (w, h), (0, h)], fill=(*colour, 255))
            draw.line(pts, fill=(*_mix(colour, a1, 0.6), 255), width=max(2, h // 250))
    elif kind == "trees":
        for _ in range(46):
            y = horizon + (h - horizon) * rng.random() ** 0.8
            size = h * (0.05 + 0.22 * (y - horizon) / (h - horizon))
            x = rng.uniform(-0.05, 1.05) * w
            colour = _mix(a0 if rng.random() < 0.6 else a1, g1, rng.uniform(0, 0.4))
            draw.rectangle((x - size * 0.04, y - size * 0.3, x + size * 0.04, y), fill=(*a2, 255))
            for tier in range(3):
                top = y - size * (1.0 - tier * 0.22)
                half = size * (0.22 + tier * 0.08)
                draw.polygon(
                    [(x, top), (x - half, top + size * 0.45), (x + half, top + size * 0.45)],
                    fill=(*colour, 255),
                )
    elif kind == "buildings":
        x = -rng.uniform(0, 0.05) * w
        while x < w:
            bw = rng.uniform(0.05, 0.12) * w
            top = horizon - rng.uniform(0.05, 0.4) * h
            colour = _mix(g0, g1, rng.uniform(0.2, 0.9))
            draw.rectangle((x, top, x + bw, h), fill=(*colour, 255))
            step = max(6, int(h * 0.03))
            for wy in range(int(top + step), h, step):
                for wx in range(int(x + step * 0.5), int(x + bw - step * 0.5), step):
                    if rng.random() < 0.35:
                        lit = (a0, a1, a2)[int(rng.integers(0, 3))]
                        draw.rectangle(
                            (wx, wy, wx + step * 0.45, wy + step * 0.55), fill=(*lit, 255)
                        )
            x += bw + rng.uniform(0, 0.02) * w
    elif kind == "shards":
        for _ in range(34):
            x, base = rng.uniform(0, w), h * rng.uniform(0.75, 1.05)
            tall, half = h * rng.uniform(0.1, 0.45), w * rng.uniform(0.01, 0.04)
            colour = (a0, a1, a2)[int(rng.integers(0, 3))]
            draw.polygon(
                [(x - half, base), (x + rng.normal(0, half), base - tall), (x + half, base)],
                fill=(*colour, int(rng.uniform(170, 255))),
            )
    else:  # orbs
        for _ in range(38):
            r = h * rng.uniform(0.015, 0.07)
            x, y = rng.uniform(0, w), rng.uniform(0.1, 1.0) * h
            colour = (a0, a1, a2)[int(rng.integers(0, 3))]
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, int(rng.uniform(150, 240))))
            draw.ellipse(
                (x - r / 3, y - r / 3, x + r / 3, y + r / 3),
                fill=(*_mix(colour, (255, 255, 255), 0.5), 255),
            )


def soften(img: Image.Image, radius: float) -> Image.Image:
    """A wide Gaussian blur, cheaply: blur at quarter size and scale back up."""
    mode = img.mode
    work = img.convert("RGBa") if mode == "RGBA" else img
    small = work.resize((max(1, img.width // 4), max(1, img.height // 4)), Image.Resampling.BOX)
    small = small.filter(ImageFilter.GaussianBlur(radius / 4))
    out = small.resize(img.size, Image.Resampling.BILINEAR)
    return out.convert("RGBA") if mode == "RGBA" else out


def build_world(
    theme: Theme, seed: int, width: int, height: int, *, focus: bool = False, margin: bool = True
) -> World:
    mx, my = margins(width, height) if margin else (0, 0)
    cw, ch = width + 2 * mx, height + 2 * my
    ds = min(1.0, DESIGN_MAX / cw)
    dw, dh = max(2, round(cw * ds / 2) * 2), max(2, round(ch * ds / 2) * 2)
    rng = np.random.default_rng(seed)
    horizon = dh * rng.uniform(0.5, 0.62)
    hz = int(horizon)
    rows = np.concatenate([_gradient(*theme.sky, hz), _gradient(*theme.ground, dh - hz)])
    base = Image.fromarray(np.ascontiguousarray(rows[:, None, :])).resize(
        (dw, dh), Image.Resampling.NEAREST
    )
    # soft clouds in the sky, a finer mottle everywhere (gives the camera something to track)
    qw, qh = max(2, dw // 4), max(2, dh // 4)  # textures are smooth: make them at 1/4 size
    clouds = _noise(rng, (14, 8), (qw, qh)) ** 2
    fade = np.clip((horizon / 4 - np.arange(qh)) / (qh * 0.1), 0.0, 1.0)[:, None]
    mask = clouds * fade * 0.45 + _noise(rng, (48, 27), (qw, qh)) * 0.14
    tint = _mix(theme.sky[1], (255, 255, 255), 0.6)
    mask_img = Image.fromarray((mask * 255).astype(np.uint8)).resize(
        (dw, dh), Image.Resampling.BILINEAR
    )
    base = Image.composite(Image.new("RGB", (dw, dh), tint), base, mask_img)
    del clouds, mask, mask_img
    far = base.convert("RGBA")
    fdraw = ImageDraw.Draw(far)
    far_colour = _mix(theme.ground[0], theme.sky[1], 0.45)
    if theme.shapes == "buildings":
        x = 0.0
        while x < dw:
            bw = rng.uniform(0.02, 0.05) * dw
            fdraw.rectangle(
                (x, horizon - rng.uniform(0.05, 0.22) * dh, x + bw, horizon + 2),
                fill=(*far_colour, 255),
            )
            x += bw
    else:
        ridge = _ridge(
            rng, dw, horizon + 2, dh * 0.05, jag=dh * 0.01 if theme.shapes == "mountains" else 0.0
        )
        fdraw.polygon([*ridge, (dw, horizon + 4), (0, horizon + 4)], fill=(*far_colour, 255))
    near = Image.new("RGBA", (dw, dh), (0, 0, 0, 0))
    _draw_near(ImageDraw.Draw(near), theme, rng, dw, dh, horizon)
    world = Image.alpha_composite(far, near).convert("RGB")
    canvas = Yuv420.from_image(world)
    del world
    if (dw, dh) != (cw, ch):
        canvas = canvas.resized(cw, ch)
    pair = None
    if focus:
        box = (round(mx * ds), round(my * ds), round((mx + width) * ds), round((my + height) * ds))
        far_c, near_c = far.crop(box), near.crop(box)
        radius = max(2.0, dh / 60)
        a = Image.alpha_composite(soften(far_c, radius), near_c).convert("RGB")
        b = Image.alpha_composite(far_c, soften(near_c, radius)).convert("RGB")
        pair = (
            Yuv420.from_image(a).resized(width, height),
            Yuv420.from_image(b).resized(width, height),
        )
    del far, near
    hero = None
    if theme.hero != "none":
        d = round(height * {"sun": 0.13, "moon": 0.1, "planet": 0.2}[theme.hero])
        if theme.hero == "sun":
            img = disc(d, _mix(theme.accents[1], (255, 240, 200), 0.6), glow=0.6)
        elif theme.hero == "moon":
            img = disc(d, (232, 232, 240), glow=0.3, crescent=True)
        else:
            img = disc(d, theme.accents[0], glow=0.2, ring=theme.accents[1])
        hero = (Sprite(img), Sprite(img.filter(ImageFilter.GaussianBlur(max(2.0, d / 25)))))
    drift = {"sun": (0.0, 0.06), "moon": (0.04, -0.02), "planet": (0.06, 0.0)}
    colours = PARTICLE_COLOURS.get(
        theme.particles, (theme.accents[1], _mix(theme.accents[0], (255, 255, 255), 0.5))
    )
    particles = Particles(theme.particles, seed, width, height, colours)
    return World(
        canvas,
        pair,
        hero,
        (float(rng.uniform(0.2, 0.8)), 0.2),
        drift.get(theme.hero, (0.0, 0.0)),
        particles,
    )
