"""What an output must be, per endpoint: the promise every engine keeps.

Computed from the validated request and the probed inputs, and shared by all
engines so that the preview engine and the model engine return structurally
identical media.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ltxserve.engines.base import EngineJob
from ltxserve.errors import InvalidRequestError
from ltxserve.media.probe import MediaInfo, probe

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


def parse_resolution(value: str) -> tuple[int, int]:
    w, h = value.lower().split("x")
    return int(w), int(h)


def _even(n: int) -> int:
    """H.264 in 4:2:0 needs even sizes: an odd input dimension loses its last pixel."""
    return max(2, n // 2 * 2)


def _video(inputs: dict[str, MediaInfo], field: str = "video_uri") -> Any:
    info = inputs.get(field)
    if info is None or info.video is None:
        raise InvalidRequestError(f"{field}: the input has no video stream")
    return info.video


def plan_job(job: EngineJob) -> tuple[dict[str, MediaInfo], OutputPlan]:
    """Probe every input of ``job`` (errors name the field) and plan its output."""
    infos = {field: probe(path, label=field) for field, path in job.inputs.items()}
    return infos, plan_output(job.endpoint, job.request, infos)


def plan_output(endpoint: str, request: dict[str, Any], inputs: dict[str, MediaInfo]) -> OutputPlan:
    if endpoint in ("text-to-video", "image-to-video"):
        w, h = parse_resolution(request["resolution"])
        fps = Fraction(request.get("fps") or 24)
        # duration: null was resolved at submit (jobs.catalog.auto_duration)
        duration = request["duration"]
        return OutputPlan(w, h, fps, int(duration * fps), bool(request.get("generate_audio", True)))
    if endpoint == "audio-to-video":
        audio = inputs.get("audio_uri")
        if audio is None or audio.audio is None:
            raise InvalidRequestError("audio_uri: the input has no audio stream")
        if request.get("resolution"):
            w, h = parse_resolution(request["resolution"])
        else:
            image = inputs.get("image_uri")
            portrait = bool(image and image.video and image.video.height > image.video.width)
            w, h = (1080, 1920) if portrait else (1920, 1080)
        return OutputPlan(
            w, h, Fraction(A2V_FPS), max(1, round(audio.audio.duration * A2V_FPS)), True
        )
    v = _video(inputs)
    has_audio = inputs["video_uri"].audio is not None
    if endpoint == "retake":
        # The contract (EditVideoRequestResolution): when omitted, a portrait input
        # gives 1080x1920 and any other 1920x1080. Sizes as displayed (rotation applied).
        w, h = (
            parse_resolution(request["resolution"])
            if request.get("resolution")
            else (1080, 1920)
            if v.height > v.width
            else (1920, 1080)
        )
        wants_audio = request.get("mode", "replace_audio_and_video") != "replace_video"
        return OutputPlan(w, h, v.fps, v.frames, has_audio or wants_audio)
    if endpoint == "extend":
        extra = round(float(request["duration"]) * v.fps)
        return OutputPlan(_even(v.width), _even(v.height), v.fps, v.frames + extra, has_audio)
    if endpoint == "video-to-video-hdr":
        return OutputPlan(v.width, v.height, v.fps, v.frames, False)
    if endpoint == "video-to-video-reframe":
        w, h = parse_resolution(request["resolution"])
        return OutputPlan(w, h, v.fps, v.frames, has_audio)
    raise InvalidRequestError(f"unknown endpoint {endpoint}")
