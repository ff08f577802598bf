"""Writing the model engine's outputs at exactly the planned size, rate, length and audio.

Generated frames come at generation size and are scaled to the plan by the
encoder's scaler; input frames that a job keeps (retake, extend, reframe) are
copied from the decoded input at full quality. Audio is one float track at
48 kHz, cut or padded to the planned duration and handed to the muxer in step
with the frames.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import TracebackType

import av
import numpy as np
import torch
from numpy.typing import NDArray

from ltxserve.engines.plan import OutputPlan
from ltxserve.media.exr import encode_exr
from ltxserve.media.writer import AUDIO_RATE, VideoWriter


def planned_samples(plan: OutputPlan) -> int:
    return round(plan.frames * AUDIO_RATE / plan.fps)


class Mp4Output:
    """An MP4 of exactly ``plan``: call one write method per planned frame, then close."""

    def __init__(self, path: Path, plan: OutputPlan, audio: NDArray[np.float32] | None) -> None:
        self.plan = plan
        self.writer = VideoWriter(
            path, plan.width, plan.height, plan.fps, audio=plan.audio, engine="ltx"
        )
        n = planned_samples(plan)
        track = np.zeros((2, n), np.float32) if audio is None else audio[:, :n]
        self.audio = np.pad(track, ((0, 0), (0, n - track.shape[1])))
        self._pos = 0

    @property
    def written(self) -> int:
        return self.writer.frames_written

    def write_rgb(self, rgb: NDArray[np.uint8]) -> None:
        """One frame of any size; scaled to the plan."""
        if rgb.shape[0] == self.plan.height and rgb.shape[1] == self.plan.width:
            self.writer.write_frame(np.ascontiguousarray(rgb))
        else:
            self.writer.write_video_frame(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            )
        self._audio()

    def write_frame(self, frame: av.VideoFrame) -> None:
        """One decoded input frame; scaled to the plan."""
        self.writer.write_video_frame(frame)
        self._audio()

    def _audio(self) -> None:
        if self.writer.has_audio:
            n = self.writer.audio_samples_due()
            self.writer.write_audio(self.audio[:, self._pos : self._pos + n])
            self._pos += n

    def close(self) -> None:
        if self.written != self.plan.frames:
            raise RuntimeError(f"wrote {self.written} frames, planned {self.plan.frames}")
        self.writer.close()

    def __enter__(self) -> Mp4Output:
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
            self.writer.__exit__(exc_type, exc, tb)


def upscale(rgb: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    out = frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC")
    return np.asarray(out.to_ndarray(), dtype=np.uint8)


def scale_linear(frame: NDArray[np.float32], width: int, height: int) -> NDArray[np.float16]:
    """Scale one scene-linear (h, w, 3) frame, keeping its values (no clipping above 1)."""
    if frame.shape[0] != height or frame.shape[1] != width:
        t = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]
        t = torch.nn.functional.interpolate(
            t, size=(height, width), mode="bilinear", align_corners=False
        )
        frame = t[0].permute(1, 2, 0).clamp(min=0).numpy()
    return np.minimum(frame, 65000).astype(np.float16)


class ExrZipOutput:
    """A ZIP of one scene-linear half-float EXR per frame, named frame_00000.exr, ..."""

    def __init__(self, path: Path, plan: OutputPlan) -> None:
        self.plan = plan
        self.zip = zipfile.ZipFile(str(path), "w", zipfile.ZIP_STORED)
        self.written = 0

    def write(self, frame: NDArray[np.float32]) -> None:
        rgb = scale_linear(frame, self.plan.width, self.plan.height)
        self.zip.writestr(f"frame_{self.written:05d}.exr", encode_exr(rgb))
        self.written += 1

    def close(self) -> None:
        self.zip.close()
        if self.written != self.plan.frames:
            raise RuntimeError(f"wrote {self.written} frames, planned {self.plan.frames}")
