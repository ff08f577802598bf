"""The prompt as a caption: legible for the first second, then fading out.

Rendered once per job with Pillow's bundled default font (``load_default(size)``,
a FreeType font since Pillow 10.1; no font files are shipped or looked up) as
white text on a translucent dark box near the bottom of the frame. Without
FreeType the bitmap default font is scaled up instead. Long prompts wrap to at
most three lines and end in "...".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

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


# Scripts written without spaces between words: a line may break between any two of
# their characters (CJK ideographs and kana, Hangul, Thai, Lao, Khmer, Myanmar, and
# full-width forms). Ranges are inclusive code points.
_NO_SPACE_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FFF),  # CJK radicals, Kangxi
    (0x3000, 0x30FF),  # CJK punctuation, Hiragana, Katakana
    (0x3100, 0x9FFF),  # Bopomofo ... CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half- and full-width forms
    (0x20000, 0x3FFFF),  # CJK extensions
)


def _no_space_script(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES)


def _mark(ch: str) -> bool:
    """A combining mark (Thai vowels and tones, accents): never the first of a line."""
    return unicodedata.category(ch) in ("Mn", "Mc", "Me")


def wrap(text: str, measure: object, max_width: float, max_lines: int = MAX_LINES) -> list[str]:
    """Greedy line breaking by measured width, linear in the text's length.

    Lines break at spaces, between two characters of a script written without
    spaces (Chinese, Japanese, Thai, ...), and inside a run too long for a line,
    never before a combining mark. Widths are summed from a per-character table
    (each distinct character measured once), so a 4,000-character prompt without
    a space costs what one with spaces does (the old wrap re-measured shorter and
    shorter prefixes of a long word: cubic, minutes per job; issue 17). Layout
    stops after ``max_lines`` lines; overflow ends the last one in '...'. Each
    line is measured whole once at the end and trimmed if kerning made it wider
    than the sum of its characters.
    """
    length = measure.getlength  # type: ignore[attr-defined]
    table: dict[str, float] = {}

    def cw(ch: str) -> float:
        w = table.get(ch)
        if w is None:
            w = table[ch] = float(length(ch))
        return w

    flat = re.sub(r"\s+", " ", text).strip()
    n = len(flat)
    lines: list[str] = []
    start = 0  # first character of the line being laid
    width = 0.0  # width of flat[start:i]
    cut: tuple[int, int] | None = None  # best break so far: (line end, next line start)
    i = 0
    while i < n and len(lines) <= max_lines:
        ch = flat[i]
        w = cw(ch)
        if ch == " ":
            cut = (i, i + 1)
            width += w
            i += 1
            continue
        mark = _mark(ch)
        if i > start and not mark and (_no_space_script(ch) or _no_space_script(flat[i - 1])):
            cut = (i, i)
        if width + w > max_width and i > start and not mark:
            end, nxt = cut if cut is not None and cut[0] > start else (i, i)
            lines.append(flat[start:end].rstrip())
            start = nxt
            width = sum(cw(c) for c in flat[start:i])
            cut = None
            continue
        width += w
        i += 1
    overflow = len(lines) > max_lines or (len(lines) == max_lines and start < n)
    if not overflow and start < n:
        lines.append(flat[start:].strip())
    lines = [line for line in lines if line]
    if overflow:
        last = lines[max_lines - 1]
        room = max_width - float(length("..."))
        keep, used = 0, 0.0
        for ch in last:
            if used + cw(ch) > room:
                break
            used += cw(ch)
            keep += 1
        while 0 < keep < len(last) and _mark(last[keep]):
            keep -= 1  # do not leave a base character without its marks
        lines = [*lines[: max_lines - 1], last[:keep].rstrip() + "..."]
    return [_fit(line, length, max_width) for line in lines]


def _fit(line: str, length: Any, max_width: float) -> str:
    """Trim ``line`` until its whole measured width fits (kerning can add a little)."""
    tail = "..." if line.endswith("...") else ""
    body = line[: len(line) - len(tail)]
    while len(body) > 1 and float(length(body + tail)) > max_width:
        body = body[:-1]
    return body + tail


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
