"""The documented per-endpoint limits on input media, checked against InputInfo.

    audio-to-video  audio_uri 2-20 s (2-10 s at 1440p/4K: the model table's
                    limit, put in the request as ``_audio_max_seconds`` by validation)
    retake          video_uri >= 73 frames, <= 3840x2160
    extend          video_uri >= 73 frames, <= 3840x2160, 16:9 or 9:16,
                    (context + duration) at the input fps <= 505 frames
    video-to-video-hdr       frames by size tier: <= 1920x1080: 181,
                             <= 2560x1440: 101, <= 3840x2160: 41
    video-to-video-reframe   <= 60 s and <= 1800 frames

Sizes compare orientation-free (a 1080x1920 portrait video is in the 1920x1080
tier). Every violation is an InvalidRequestError naming the field and the rule.
"""

from __future__ import annotations

import math
from typing import Any

from ltxserve.errors import InvalidRequestError
from ltxserve.inputs.media import InputInfo

MIN_EDIT_FRAMES = 73
EXTEND_MAX_FRAMES = 505
AUDIO_MIN_SECONDS, AUDIO_MAX_SECONDS = 2.0, 20.0
HDR_TIERS = ((1920, 1080, 181), (2560, 1440, 101), (3840, 2160, 41))
REFRAME_MAX_SECONDS, REFRAME_MAX_FRAMES = 60.0, 1800
ASPECT_TOLERANCE = 0.01  # 854x480 and 1366x768 count as 16:9


def _fits(w: int, h: int, tw: int, th: int) -> bool:
    return max(w, h) <= tw and min(w, h) <= th


def _fmt_s(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def check_input(endpoint: str, request: dict[str, Any], info: InputInfo) -> None:
    """Raise InvalidRequestError if ``info`` breaks a limit of ``endpoint``."""
    field = info.field
    if info.kind == "audio" and endpoint == "audio-to-video":
        d = info.duration
        if d is None:
            raise InvalidRequestError(f"{field}: the audio's duration cannot be determined")
        most = float(request.get("_audio_max_seconds") or AUDIO_MAX_SECONDS)
        # a hair of tolerance: encoders pad or trim a few ms
        if d < AUDIO_MIN_SECONDS - 0.02 or d > most + 0.02:
            raise InvalidRequestError(
                f"{field}: audio must be between 2 and {_fmt_s(most)} seconds long"
                f"{' at ' + str(request['resolution']) if most < AUDIO_MAX_SECONDS else ''}"
                f" (it is {_fmt_s(d)} s)"
            )
        return
    if info.kind != "video":
        return
    assert info.width and info.height and info.frames and info.fps
    w, h, frames, fps = info.width, info.height, info.frames, info.fps
    if endpoint in ("retake", "extend"):
        if frames < MIN_EDIT_FRAMES:
            raise InvalidRequestError(
                f"{field}: the video must have at least {MIN_EDIT_FRAMES} frames (it has {frames})"
            )
    if endpoint == "extend":
        ratio = max(w, h) / min(w, h)
        if abs(ratio - 16 / 9) > ASPECT_TOLERANCE * 16 / 9:
            raise InvalidRequestError(f"{field}: extend needs a 16:9 or 9:16 video (it is {w}x{h})")
        seconds = float(request.get("context") or 0) + float(request["duration"])
        total = math.ceil(seconds * fps - 1e-6)
        if total > EXTEND_MAX_FRAMES:
            raise InvalidRequestError(
                f"{field}: context + duration must be at most {EXTEND_MAX_FRAMES} frames at the "
                f"input's {_fmt_s(float(fps))} fps ({_fmt_s(seconds)} s is {total} frames)"
            )
    elif endpoint == "video-to-video-hdr":
        for tw, th, limit in HDR_TIERS:
            if _fits(w, h, tw, th):
                if frames > limit:
                    raise InvalidRequestError(
                        f"{field}: HDR inputs up to {tw}x{th} may have at most {limit} frames "
                        f"(this {w}x{h} video has {frames})"
                    )
                break
    elif endpoint == "video-to-video-reframe":
        duration = info.duration or float(frames / fps)
        if duration > REFRAME_MAX_SECONDS + 1e-6 or frames > REFRAME_MAX_FRAMES:
            raise InvalidRequestError(
                f"{field}: reframe inputs may be at most {int(REFRAME_MAX_SECONDS)} s and "
                f"{REFRAME_MAX_FRAMES} frames (this one is {_fmt_s(duration)} s, {frames} frames)"
            )
