"""OpenEXR encoding of half-float RGB frames (scene-linear), one frame at a time."""

from __future__ import annotations

import io

import numpy as np
import OpenEXR
from numpy.typing import NDArray


def encode_exr(rgb: NDArray[np.float16]) -> bytes:
    """Encode an HxWx3 half-float image as a ZIP-compressed scanline EXR."""
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    buf = io.BytesIO()
    OpenEXR.File(header, {"RGB": np.ascontiguousarray(rgb, dtype=np.float16)}).write(buf)
    return buf.getvalue()


def decode_exr(data: bytes) -> NDArray[np.float16]:
    """Decode an EXR written by encode_exr back to HxWx3 half floats."""
    f = OpenEXR.File(io.BytesIO(data))
    channels = f.channels()
    if "RGB" in channels:
        return np.asarray(channels["RGB"].pixels)
    return np.stack([np.asarray(channels[c].pixels) for c in ("R", "G", "B")], axis=-1)
