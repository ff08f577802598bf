"""Camera moves as a pose per moment, applied by sampling a canvas larger than the frame.

Conventions (what a viewer sees):

* ``dolly_in`` magnifies (zoom 1 -> 1.4), ``dolly_out`` widens until the whole
  canvas margin is in view;
* ``dolly_left`` / ``dolly_right``: the camera travels left / right, so the scene
  slides the other way across the frame;
* ``jib_up`` / ``jib_down``: the camera rises / lowers, so the scene slides down /
  up;
* ``static`` holds still; ``focus_shift`` holds still and racks focus from the
  near layer to the far one (the engine blends two differently focused frames).

Every move eases in and out (smoothstep), so it starts and ends at rest: a
continuation (extend) starts exactly at its boundary frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from ltxserve.media.yuv import Yuv420, sample_view

MARGIN = 0.16  # the canvas extends the frame by this fraction of its size on every side
ZOOM_IN = 1.4


@dataclass(frozen=True)
class Pose:
    dx: float = 0.0  # view centre offset, in frame widths (+ = right)
    dy: float = 0.0  # in frame heights (+ = down)
    zoom: float = 1.0  # > 1 magnifies
    focus: float = 0.0  # 0 = near layer sharp, 1 = far layer sharp


REST = Pose()


def ease(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


def pose(motion: str, u: float, strength: float = 1.0) -> Pose:
    """The pose at progress ``u`` in [0, 1] of a move; ``strength`` scales its extent."""
    e = ease(u) * strength
    if motion == "dolly_in":
        return Pose(zoom=1.0 + (ZOOM_IN - 1.0) * e)
    if motion == "dolly_out":
        return Pose(zoom=1.0 / (1.0 + 2.0 * MARGIN * e))
    if motion == "dolly_left":
        return Pose(dx=-MARGIN * e)
    if motion == "dolly_right":
        return Pose(dx=MARGIN * e)
    if motion == "jib_up":
        return Pose(dy=-MARGIN * e)
    if motion == "jib_down":
        return Pose(dy=MARGIN * e)
    if motion == "focus_shift":
        return Pose(focus=e)
    return REST


def inverse(p: Pose) -> Pose:
    """The pose that undoes ``p`` (used to arrive at a still: move from it to rest)."""
    return Pose(-p.dx, -p.dy, 1.0 / p.zoom, 1.0 - p.focus)


def margins(width: int, height: int) -> tuple[int, int]:
    """Canvas margin (even pixels) on each side for a frame of this size."""
    return round(width * MARGIN / 2) * 2, round(height * MARGIN / 2) * 2


def view_origin(canvas: Yuv420, width: int, height: int, p: Pose) -> tuple[float, float, float]:
    """(x0, y0, scale) of the canvas region the frame shows at pose ``p``."""
    scale = 1.0 / p.zoom
    x0 = (canvas.width - width * scale) / 2 + p.dx * width
    y0 = (canvas.height - height * scale) / 2 + p.dy * height
    if abs(scale - 1.0) < 1e-9:
        x0, y0 = float(round(x0)), float(round(y0))
    return x0, y0, scale


def shoot(canvas: Yuv420, out: Yuv420, p: Pose) -> None:
    """Fill ``out`` with what the camera at pose ``p`` sees of ``canvas`` (centred on it)."""
    x0, y0, scale = view_origin(canvas, out.width, out.height, p)
    sample_view(canvas, out, x0, y0, scale)


def to_screen(
    p: Pose, width: int, height: int, fx: float, fy: float, depth: float = 1.0
) -> tuple[float, float]:
    """Screen position of a point at (fx, fy) frame fractions (at rest) under pose ``p``.

    ``depth`` < 1 moves less with the camera (a distant object's parallax).
    """
    zoom = 1.0 + (p.zoom - 1.0) * depth
    x = width / 2 + ((fx - 0.5) * width - p.dx * width * depth) * zoom
    y = height / 2 + ((fy - 0.5) * height - p.dy * height * depth) * zoom
    return x, y
