"""Small real media made in-process for tests."""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ltxserve.media.writer import VideoWriter


def mp4_bytes(
    width: int = 320, height: int = 180, fps: int = 24, frames: int = 80, audio: bool = True
) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.mp4"
        with VideoWriter(path, width, height, fps, audio=audio) as w:
            for i in range(frames):
                w.write_frame(np.full((height, width, 3), (i * 3) % 255, np.uint8))
                if audio:
                    w.write_audio(np.zeros(w.audio_samples_due(), np.float32))
        return path.read_bytes()


def write_ramp_video(path: Path, width: int, height: int, frames: int = 72, fps: int = 24) -> Path:
    """Frame i flat grey (3 * i), with a 440 Hz tone: what the engine tests look for
    when they check that an input's frames and sound were kept."""
    with VideoWriter(path, width, height, fps, audio=True) as w:
        for i in range(frames):
            w.write_frame(np.full((height, width, 3), 3 * i, np.uint8))
            n = w.audio_samples_due()
            t = (np.arange(w._audio_pts, w._audio_pts + n) / w.audio_rate).astype(np.float32)
            w.write_audio(0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32))
    return path


def png_bytes(width: int = 64, height: int = 36) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def wav_bytes(seconds: float = 3.0, rate: int = 48000) -> bytes:
    import wave

    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 330 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def write_portrait_phone_video(path: Path, frames: int = 48) -> None:
    """As a phone stores a portrait clip: landscape 320x192 pixels and a display matrix
    saying "turn 90 degrees clockwise"; a white band marks the stored top edge."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 320, 192, "yuv420p"
        s.set_display_rotation(-90)  # counter-clockwise degrees: -90 is clockwise
        for i in range(frames):
            rgb = np.full((192, 320, 3), 60, np.uint8)
            rgb[:24] = 255
            rgb[:, :, 1] = (rgb[:, :, 1].astype(int) + i) % 256
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
