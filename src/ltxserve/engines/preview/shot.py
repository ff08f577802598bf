"""One generated shot: the prompt's world seen through a camera move, frame by frame.

Used by text-to-video as the whole output, by audio-to-video as a background, and
by retake and extend for the parts they generate. Per frame it does a view
sample of the precomputed canvas (or a blend of the two focus frames), composites
the hero sprite and the particles, and, when asked, the caption.
"""

from __future__ import annotations

import numpy as np

from ltxserve.engines.preview.camera import Pose, pose, shoot, to_screen
from ltxserve.engines.preview.output import trim_heap
from ltxserve.engines.preview.prompt import Theme
from ltxserve.engines.preview.scene import build_world
from ltxserve.engines.preview.text import Caption
from ltxserve.media.yuv import Yuv420, blend


class Shot:
    def __init__(
        self,
        theme: Theme,
        seed: int,
        width: int,
        height: int,
        motion: str,
        *,
        caption: str | None = None,
        strength: float = 1.0,
    ) -> None:
        self.width, self.height = width, height
        self.motion, self.strength = motion, strength
        self.world = build_world(theme, seed, width, height, focus=motion == "focus_shift")
        self.caption = Caption(caption, width, height) if caption and caption.strip() else None
        trim_heap()

    def pose(self, u: float) -> Pose:
        return pose(self.motion, u, self.strength)

    def render(self, t: float, u: float, *, lift: float = 0.0) -> Yuv420:
        """The frame at ``t`` seconds, ``u`` in [0, 1] of the move; ``lift`` (frame
        heights) is added to the camera's height offset (negative raises it)."""
        w = self.world
        out = Yuv420(
            np.empty((self.height * 3 // 2, self.width), np.uint8), self.width, self.height
        )
        p = self.pose(u)
        if lift:
            p = Pose(p.dx, p.dy + lift, p.zoom, p.focus)
        if w.focus is not None:
            blend(w.focus[0], w.focus[1], p.focus, out)
        else:
            shoot(w.canvas, out, p)
        if w.hero is not None:
            fx = w.hero_at[0] + w.hero_drift[0] * u
            fy = w.hero_at[1] + w.hero_drift[1] * u
            x, y = to_screen(p, self.width, self.height, fx, fy, depth=0.35)
            sharp, soft = w.hero
            if w.focus is not None:
                soft.draw(out, x, y, 1.0 - p.focus)
                sharp.draw(out, x, y, p.focus)
            else:
                sharp.draw(out, x, y)
        w.particles.draw(out, t)
        if self.caption is not None:
            self.caption.draw(out, t)
        return out
