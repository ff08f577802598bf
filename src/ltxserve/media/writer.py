"""Streaming H.264/AAC MP4 writer.

Frames go straight to the encoder as they are produced; audio is handed over
in the same rhythm (one video frame's worth at a time) so the muxer interleaves
without buffering the whole track.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from numpy.typing import NDArray

AUDIO_RATE = 48_000


ENGINE_NOTES = {
    "preview": "procedural preview, not a generative model",
    "minimal": "test pattern, not a generative model",
}


def engine_comment(engine: str) -> str:
    """The MP4 ``comment`` tag naming the engine (docs/api.md, "Engine labelling")."""
    note = ENGINE_NOTES.get(engine)
    return f"ltxserve engine={engine}" + (f" ({note})" if note else "")


class VideoWriter:
    """Write an MP4 (H.264 yuv420p, optional AAC-LC stereo 48 kHz) frame by frame."""

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: int | Fraction,
        *,
        audio: bool = False,
        audio_rate: int = AUDIO_RATE,
        preset: str = "ultrafast",
        crf: int = 20,
        options: dict[str, str] | None = None,
        slice_threads: int | None = None,
        engine: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = Fraction(fps)
        self.audio_rate = audio_rate
        self._container = av.open(
            str(self.path), mode="w", format="mp4", options={"movflags": "+faststart"}
        )
        if engine is not None:  # the file says what made it, wherever it travels
            self._container.metadata["comment"] = engine_comment(engine)
        self._video = self._container.add_stream("libx264", rate=self.fps)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"preset": preset, "crf": str(crf), **(options or {})}
        if slice_threads is not None:  # fixed slices: output independent of the core count
            self._video.codec_context.thread_type = "SLICE"
            self._video.codec_context.thread_count = max(1, slice_threads)
        self._audio = None
        if audio:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = "stereo"
        self.frames_written = 0
        self._audio_pts = 0
        self._closed = False

    def write_frame(self, rgb: NDArray[np.uint8]) -> None:
        """Encode one HxWx3 uint8 RGB frame."""
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def write_video_frame(self, frame: av.VideoFrame) -> None:
        """Encode an already-decoded frame without a round trip through numpy."""
        frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def audio_samples_due(self) -> int:
        """Samples needed to keep audio level with the video written so far."""
        target = int(self.frames_written * self.audio_rate / self.fps)
        return max(0, target - self._audio_pts)

    def write_audio(self, samples: NDArray[np.float32]) -> None:
        """Encode float32 samples shaped (2, n) (or (n,) for mono, duplicated)."""
        if self._audio is None:
            raise RuntimeError("writer was opened without audio")
        if samples.ndim == 1:
            samples = np.stack([samples, samples])
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        frame.sample_rate = self.audio_rate
        frame.pts = self._audio_pts
        self._audio_pts += samples.shape[1]
        for packet in self._audio.encode(frame):
            self._container.mux(packet)

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for packet in self._video.encode():
            self._container.mux(packet)
        if self._audio is not None:
            for packet in self._audio.encode():
                self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - already failing; keep the first error
                pass
