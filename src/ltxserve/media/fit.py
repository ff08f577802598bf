"""Fitting pictures into an output frame.

Two rules, used consistently by every engine:

* **cover** ("fitted" in the docs): scale uniformly so the picture covers the whole
  frame, then crop the overflow equally from both sides (center crop). Nothing is
  letterboxed and nothing is stretched; a picture of another aspect loses its
  edges. Resampling is Lanczos. This is what image-to-video's first and last
  frames, and audio-to-video's background, are.
* **contain**: scale uniformly so the whole picture fits inside the frame,
  centered; the remaining bands are left to the caller (reframe outpaints them).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from ltxserve.errors import InvalidRequestError


def load_image(path: Path | str, *, label: str = "image") -> Image.Image:
    """Open an input picture as RGB: EXIF orientation applied, alpha flattened onto black."""
    try:
        with Image.open(path) as src:
            src.load()
            image = ImageOps.exif_transpose(src)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequestError(f"{label}: the file could not be read as an image") from exc
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (0, 0, 0))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Cover-scale and center-crop ``image`` to exactly width x height."""
    if image.size == (width, height):
        return image.copy()
    return ImageOps.fit(
        image, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5)
    )


def cover_box(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The source rectangle (x, y, w, h) that cover() keeps, rounded to even pixels."""
    scale = max(width / src_w, height / src_h)
    w = min(src_w, round(width / scale / 2) * 2)
    h = min(src_h, round(height / scale / 2) * 2)
    return (src_w - w) // 4 * 2, (src_h - h) // 4 * 2, w, h


def contain_rect(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where contain() puts the source in the frame: (x, y, w, h), even-aligned, centered."""
    scale = min(width / src_w, height / src_h)
    w = max(2, min(width, round(src_w * scale / 2) * 2))
    h = max(2, min(height, round(src_h * scale / 2) * 2))
    return (width - w) // 4 * 2, (height - h) // 4 * 2, w, h
