"""video-to-video-hdr: a ZIP of one scene-linear half-float OpenEXR per input frame.

Per frame: decode, convert to RGB (the file's own matrix, swscale), map every
8-bit code value through one lookup table, encode the EXR, append it to the ZIP,
next. Nothing else is held, so memory does not depend on the number of frames.

The table inverts the BT.709 transfer function (the OETF, ``V = 1.099 L^0.45 -
0.099`` above 0.018, ``4.5 L`` below), which also serves sRGB-tagged input well
enough for a preview, and then expands highlights: linear values above
``KNEE`` bend upwards quadratically so that SDR white (code 255) lands at
``PEAK`` (4.0, two stops over diffuse white) while everything below the knee is
untouched. It is per channel (a lookup, so it costs one gather per pixel); a
saturated highlight therefore grows slightly more saturated.

Names inside the ZIP: ``frame_00000.exr``, ``frame_00001.exr``, ... (decode
order = presentation order). EXR members are stored, not deflated again (EXR
already compresses its scanlines with ZIP).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ltxserve.engines.base import EngineResult, OutputFile
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.output import prefetch
from ltxserve.jobs.contract.requests import VideoToVideoHdr
from ltxserve.media.decode import VideoReader
from ltxserve.media.exr import encode_exr

KNEE = 0.6
PEAK = 4.0


def inverse_oetf(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """BT.709 signal (0..1) to scene-linear light (0..1)."""
    return np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))


def expand(lin: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse tone map: identity up to KNEE, then up to PEAK at 1.0."""
    over = np.clip((lin - KNEE) / (1 - KNEE), 0, None)
    return lin + (PEAK - 1.0) * over**2


def lookup_table() -> NDArray[np.float16]:
    codes = np.arange(256) / 255.0
    return expand(inverse_oetf(codes)).astype(np.float16)


def video_to_hdr(ctx: Context[VideoToVideoHdr]) -> EngineResult:
    plan = ctx.plan
    lut = lookup_table()
    out = ctx.job.output_dir / "frames.zip"
    n = plan.frames

    def frames() -> Iterator[NDArray[np.float16]]:
        with VideoReader(ctx.input("video_uri")) as reader:
            for frame in reader.frames():
                yield lut[frame.to_ndarray(format="rgb24")]

    written = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for rgb in prefetch(frames()):
            zf.writestr(f"frame_{written:05d}.exr", encode_exr(rgb))
            written += 1
            ctx.progress(min(1.0, written / max(1, n)))
    return EngineResult(
        {"exr_frames_url": OutputFile(out, "application/zip")},
        {"engine": "preview", "frames": written, "transfer": "bt709-inverse", "peak": PEAK},
    )
