"""The prompt as a caption: legible for the first second, then fading out.

Rendered once per job with Pillow's bundled default font (``load_default(size)``,
a FreeType font since Pillow 10.1; no font files are shipped or looked up) as
white text on a translucent dark box near the bottom of the frame. Without
FreeType the bitmap default font is scaled up instead. Long prompts wrap to at
most three lines and end in "...".
"""

from __future__ import annotations

import re

from PIL import Image, ImageDraw, ImageFont

from ltxserve.engines.preview.layers import Sprite
from ltxserve.media.yuv import Yuv420

HOLD = 1.0  # seconds fully visible
FADE = 0.5  # seconds of fade-out after that
MAX_LINES = 3

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont | ImageFont.TransposedFont


def _font(size: int) -> tuple[Font, float]:
    """A font and the factor its rendering must be scaled by to reach ``size``."""
    font = ImageFont.load_default(size=size)
    if isinstance(font, ImageFont.FreeTypeFont):
        return font, 1.0
    return font, size / 11.0


def wrap(text: str, measure: object, max_width: float, max_lines: int = MAX_LINES) -> list[str]:
    """Greedy word wrap by measured width; over-long words break; overflow ends in '...'."""
    length = measure.getlength  # type: ignore[attr-defined]
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    lines: list[str] = []
    line = ""
    for word in words:
        while length(word) > max_width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and length(word[:cut]) > max_width:
                cut -= 1
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        trial = f"{line} {word}" if line else word
        if length(trial) <= max_width:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and length(last + "...") > max_width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "..."]
    return lines


class Caption:
    """The prompt caption for one frame size, composited per frame with a fade."""

    def __init__(self, text: str, width: int, height: int) -> None:
        size = max(10, round(height / 18))
        font, factor = _font(size)
        lines = wrap(text, font, width * 0.86 / factor)
        ascent, descent = font.getmetrics() if isinstance(font, ImageFont.FreeTypeFont) else (11, 2)
        line_h = ascent + descent + max(2, size // 8)
        pad = max(4, size // 3)
        text_w = max((font.getlength(line) for line in lines), default=0)
        box = Image.new(
            "RGBA", (int(text_w) + 2 * pad, line_h * len(lines) + 2 * pad), (0, 0, 0, 0)
        )
        draw = ImageDraw.Draw(box)
        draw.rounded_rectangle(
            (0, 0, box.width - 1, box.height - 1), radius=pad, fill=(8, 8, 12, 170)
        )
        for i, line in enumerate(lines):
            x = (box.width - font.getlength(line)) / 2
            draw.text((x + 1, pad + i * line_h + 1), line, font=font, fill=(0, 0, 0, 255))
            draw.text((x, pad + i * line_h), line, font=font, fill=(255, 255, 255, 255))
        if factor != 1.0:
            box = box.resize(
                (round(box.width * factor), round(box.height * factor)), Image.Resampling.NEAREST
            )
        if box.width > width:
            box = box.crop((0, 0, width, box.height))
        self.lines = lines
        self.sprite = Sprite(box)
        self.cx = width / 2
        self.cy = height - box.height / 2 - height * 0.06

    def opacity(self, t: float) -> float:
        if t < HOLD:
            return 1.0
        return max(0.0, 1.0 - (t - HOLD) / FADE)

    def draw(self, frame: Yuv420, t: float) -> None:
        alpha = self.opacity(t)
        if alpha > 0.0:
            self.sprite.draw(frame, self.cx, self.cy, alpha)
