"""Sizes and frame spans: what the LTX-2 VAE accepts, and where inputs sit in a generation.

The VAE takes ``8k+1`` frames (temporal ratio 8: one causal first frame, then 8
frames per latent) and sizes that are multiples of 32 (64 for a two-stage run,
whose first stage works at half size). A generation is always at least as long
as what is cut from it, and its size keeps the plan's aspect ratio as closely as
the grid allows; the output is then cut and scaled to exactly the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def frames_up(n: int, ratio: int = 8) -> int:
    """Smallest ``ratio*k+1`` that is >= n."""
    return max(1, math.ceil(max(n - 1, 0) / ratio)) * ratio + 1 if n > 1 else 1


def frames_down(n: int, ratio: int = 8) -> int:
    """Largest ``ratio*k+1`` that is <= n (0 when n < 1)."""
    return 0 if n < 1 else (n - 1) // ratio * ratio + 1


def keyframe_start(n: int, ratio: int = 8) -> int:
    """Smallest pixel index >= n where a latent frame starts (``ratio*(k-1)+1``)."""
    return frames_up(max(n, 1), ratio)


TRAINED_RATES = (24.0, 25.0, 30.0, 60.0)  # LTX-2's training frame rates (diffusers ltx2/utils.py)


def generation_rate(seconds: float, fps: float, max_frames: int, ratio: int = 8) -> float:
    """The frame rate to generate ``seconds`` at when the output plays at ``fps``.

    ``fps`` itself when the clip fits in ``max_frames``; otherwise a rate LTX-2 was
    trained at (24/25/30/60) below ``fps`` that fits, so the transformer sees frame
    timings it knows and the output repeats frames (nearest in time); one that
    divides ``fps`` first (48 -> 24, 50 -> 25: every frame shown twice), then the highest;
    only when none fits, the highest rate that does (below 24 fps: timings the model
    was not trained on). Halving the rate, as before, gave 12 or 12.5 fps.
    """

    def fits(rate: float) -> bool:
        return frames_up(math.ceil(seconds * rate) + 1, ratio) <= max_frames

    if fits(fps):
        return fps

    def divides(rate: float) -> bool:
        return abs(fps / rate - round(fps / rate)) < 1e-9

    for rate in sorted(
        (r for r in TRAINED_RATES if r < fps), key=lambda r: (divides(r), r), reverse=True
    ):
        if fits(rate):
            return rate
    rate = math.floor((max_frames - 1) / max(seconds, 1e-9) * 100) / 100
    while rate > 0.01 and not fits(rate):
        rate = round(rate - 0.01, 2)
    return max(rate, 0.01)


def gen_size(width: int, height: int, multiple: int, max_pixels: int | None) -> tuple[int, int]:
    """The generation grid for an output of width x height.

    Scaled down (never up) to at most ``max_pixels``, then rounded to ``multiple``
    with the aspect ratio kept as closely as possible; at least one cell each way.
    """
    scale = 1.0
    if max_pixels and width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    while max_pixels and w * h > max_pixels and (w > multiple or h > multiple):
        if w / width >= h / height and w > multiple:
            w -= multiple
        elif h > multiple:
            h -= multiple
        else:
            w -= multiple
    return w, h


def fit_rect(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """Where a src-sized picture sits, aspect kept and centred, inside dst: (x, y, w, h)."""
    scale = min(dst_w / src_w, dst_h / src_h)
    w = min(dst_w, max(2, round(src_w * scale / 2) * 2))
    h = min(dst_h, max(2, round(src_h * scale / 2) * 2))
    return (dst_w - w) // 2, (dst_h - h) // 2, w, h


@dataclass(frozen=True)
class RetakeSpan:
    """A retake generation: ``pre`` held frames, the window, then ``post`` held frames.

    All indices are input-video frame numbers. The generation covers
    ``[start, start + frames)``; the prefix condition sits at latent 0 and the
    suffix condition at pixel offset ``suffix_at`` (a latent boundary).
    """

    start: int
    frames: int
    pre: int
    window_start: int
    window_end: int
    suffix_at: int
    post: int


def retake_span(
    total: int, window_start: int, window_end: int, context: int, ratio: int = 8
) -> RetakeSpan:
    ws = max(0, min(window_start, total - 1))
    we = max(ws + 1, min(window_end, total))
    pre = frames_down(min(ws, context), ratio)
    start = ws - pre
    suffix_at = keyframe_start(pre + (we - ws), ratio)
    post = frames_down(min(total - (start + suffix_at), context), ratio)
    frames = frames_up(suffix_at + post if post else pre + (we - ws), ratio)
    return RetakeSpan(start, frames, pre, ws, we, suffix_at, post)


@dataclass(frozen=True)
class ExtendSpan:
    """An extension: ``context`` input frames held, ``new`` frames generated.

    ``mode == "end"``: context at offset 0, new frames at ``new_at = context``.
    ``mode == "start"``: new frames end at ``context_at`` (a latent boundary)
    where the context begins; ``new_at = context_at - new``.
    """

    frames: int
    context: int
    context_at: int
    new_at: int
    new: int


def extend_span(mode: str, context_frames: int, new_frames: int, ratio: int = 8) -> ExtendSpan:
    ctx = max(1, frames_down(context_frames, ratio))
    if mode == "start":
        at = keyframe_start(new_frames, ratio)
        return ExtendSpan(frames_up(at + ctx, ratio), ctx, at, at - new_frames, new_frames)
    return ExtendSpan(frames_up(ctx + new_frames, ratio), ctx, 0, ctx, new_frames)


def chunks(total: int, max_frames: int) -> list[tuple[int, int]]:
    """Split ``total`` frames into consecutive (start, count) runs of at most max_frames."""
    out, start = [], 0
    while start < total:
        count = min(max_frames, total - start)
        out.append((start, count))
        start += count
    return out
