"""What an output must be, per endpoint: the promise every engine keeps.

Computed from the typed request (jobs.contract.requests) and the probed inputs,
and shared by all engines so that the preview engine and the model engine return
structurally identical media.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.requests import (
    AudioToVideo,
    Extend,
    RequestBody,
    Retake,
    TextToVideo,
    VideoToVideoHdr,
    VideoToVideoReframe,
)
from ltxserve.media.probe import MediaInfo

A2V_FPS = 25


@dataclass(frozen=True)
class OutputPlan:
    width: int
    height: int
    fps: Fraction
    frames: int
    audio: bool

    @property
    def duration(self) -> float:
        return float(self.frames / self.fps)


def _even(n: int) -> int:
    """H.264 in 4:2:0 needs even sizes: an odd input dimension loses its last pixel."""
    return max(2, n // 2 * 2)


def _by_orientation(portrait: bool) -> tuple[int, int]:
    """The contract's size when a2v or retake omit ``resolution``: 1080x1920 for a
    portrait picture, 1920x1080 for any other (sizes as displayed, rotation applied)."""
    return (1080, 1920) if portrait else (1920, 1080)


def _video(inputs: dict[str, MediaInfo], field: str = "video_uri") -> Any:
    info = inputs.get(field)
    if info is None or info.video is None:
        raise InvalidRequestError(f"{field}: the input has no video stream")
    return info.video


def plan_output(request: RequestBody, inputs: dict[str, MediaInfo]) -> OutputPlan:
    if isinstance(request, TextToVideo):  # and ImageToVideo
        w, h = request.size
        fps = Fraction(request.fps)
        if request.duration is None:  # resolved at submit (jobs.catalog.auto_duration)
            raise InvalidRequestError("duration is required")
        return OutputPlan(w, h, fps, int(request.duration * fps), request.generate_audio)
    if isinstance(request, AudioToVideo):
        audio = inputs.get("audio_uri")
        if audio is None or audio.audio is None:
            raise InvalidRequestError("audio_uri: the input has no audio stream")
        image = inputs.get("image_uri")
        w, h = request.size or _by_orientation(
            bool(image and image.video and image.video.height > image.video.width)
        )
        return OutputPlan(
            w, h, Fraction(A2V_FPS), max(1, round(audio.audio.duration * A2V_FPS)), True
        )
    v = _video(inputs)
    has_audio = inputs["video_uri"].audio is not None
    if isinstance(request, Retake):
        w, h = request.size or _by_orientation(v.height > v.width)
        return OutputPlan(w, h, v.fps, v.frames, has_audio or request.replaces_audio)
    if isinstance(request, Extend):
        extra = round(request.duration * v.fps)
        return OutputPlan(_even(v.width), _even(v.height), v.fps, v.frames + extra, has_audio)
    if isinstance(request, VideoToVideoHdr):
        return OutputPlan(v.width, v.height, v.fps, v.frames, False)
    if isinstance(request, VideoToVideoReframe):
        w, h = request.size
        return OutputPlan(w, h, v.fps, v.frames, has_audio)
    raise InvalidRequestError(f"unknown endpoint {request.endpoint}")
