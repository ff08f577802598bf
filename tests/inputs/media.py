"""Small real media (and small broken media) made in-process for the input tests.

Everything is cached per session: each file is encoded once.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from tests.core.media import data_uri, mp4_bytes, png_bytes, wav_bytes

__all__ = [
    "data_uri",
    "mp4_bytes",
    "png_bytes",
    "wav_bytes",
    "image_bytes",
    "video_bytes",
    "audio_bytes",
    "bomb_png",
    "truncated",
    "MEDIA_TYPES",
]

MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
}


@cache
def image_bytes(fmt: str = "PNG", width: int = 64, height: int = 36) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (height, width, 3), np.uint8))
    img.save(buf, fmt)
    return buf.getvalue()


@cache
def video_bytes(
    container: str = "mp4",
    codec: str = "libx264",
    width: int = 320,
    height: int = 180,
    fps: int = 24,
    frames: int = 80,
    audio: bool = False,
) -> bytes:
    """A small video; ``container`` is an FFmpeg muxer name (mp4, mov, matroska, webm)."""
    if container == "mp4" and codec == "libx264":
        return mp4_bytes(width, height, fps, frames, audio=audio)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v"
        with av.open(str(path), "w", format=container) as out:
            vs: Any = out.add_stream(codec, rate=fps)
            vs.width, vs.height = width, height
            vs.pix_fmt = "yuv420p"
            if codec == "libx264":
                vs.options = {"preset": "ultrafast"}
            elif codec == "libx265":
                vs.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
            elif codec == "libvpx-vp9":
                vs.options = {"deadline": "realtime", "cpu-used": "8"}
            for i in range(frames):
                img = np.full((height, width, 3), (i * 3) % 255, np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                for p in vs.encode(frame):
                    out.mux(p)
            for p in vs.encode(None):
                out.mux(p)
        return path.read_bytes()


@cache
def audio_bytes(fmt: str = "wav", seconds: float = 3.0) -> bytes:
    """Audio in one of wav, mp3, m4a, ogg (Vorbis), opus (OGG Opus, not accepted)."""
    if fmt == "wav":
        return wav_bytes(seconds, rate=16000)
    muxer, codec, rate = {
        "mp3": ("mp3", "libmp3lame", 44100),
        "m4a": ("ipod", "aac", 44100),
        "ogg": ("ogg", "vorbis", 44100),
        "opus": ("ogg", "libopus", 48000),
        "flac": ("flac", "flac", 44100),
    }[fmt]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a"
        with av.open(str(path), "w", format=muxer) as out:
            s: Any = out.add_stream(codec, rate=rate)
            s.layout = "stereo"
            if codec == "vorbis":
                s.codec_context.options = {"strict": "experimental"}
            n = int(rate * seconds)
            mono = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(
                np.stack([mono, mono]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = rate, 0
            rs = av.AudioResampler(
                format=s.codec_context.format.name,
                layout="stereo",
                rate=rate,
                frame_size=s.codec_context.frame_size or None,
            )
            for f in [*rs.resample(frame), *rs.resample(None)]:
                for p in s.encode(f):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
        return path.read_bytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@cache
def bomb_png(width: int = 50000, height: int = 50000) -> bytes:
    """A valid-looking PNG header claiming ``width``x``height`` over a few KB of zeros."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    body = b"".join(comp.compress(row) for _ in range(min(height, 200))) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]
