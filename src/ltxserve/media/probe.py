"""Read the facts of a media file (streams, size, rate, length) without decoding it all."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ltxserve.errors import InvalidRequestError
from ltxserve.media.boxes import BoxProblem, check_sample_tables
from ltxserve.media.decode import quarter_turns


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    rotation: int = 0  # display rotation, degrees counter-clockwise; width/height are upright


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration: float


@dataclass(frozen=True)
class MediaInfo:
    container: str
    video: VideoInfo | None
    audio: AudioInfo | None


def display_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """The rotation of the stream's first frame (0 when it has none or cannot be decoded)."""
    try:
        for frame in container.decode(stream):
            return float(frame.rotation)
    except av.FFmpegError:
        pass
    return 0.0


def probe(path: Path | str, *, label: str = "input") -> MediaInfo:
    """Probe a media file; unreadable files raise InvalidRequestError naming ``label``."""
    with open(path, "rb") as f:
        if f.read(12)[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
            try:
                check_sample_tables(f, os.fstat(f.fileno()).st_size)
            except BoxProblem as exc:
                raise InvalidRequestError(
                    f"{label}: the file could not be read as media ({exc})"
                ) from None
    try:
        with av.open(str(path)) as container:
            duration = (container.duration or 0) / 1_000_000
            video = None
            if container.streams.video:
                vs = container.streams.video[0]
                fps = Fraction(vs.average_rate or vs.guessed_rate or 0)
                vdur = (
                    float(vs.duration * vs.time_base) if vs.duration and vs.time_base else duration
                )
                frames = vs.frames or (round(vdur * fps) if fps else 0)
                turns = quarter_turns(display_rotation(container, vs))
                w, h = vs.codec_context.width, vs.codec_context.height
                video = VideoInfo(
                    codec=vs.codec_context.name,
                    width=h if turns % 2 else w,
                    height=w if turns % 2 else h,
                    fps=fps,
                    frames=int(frames),
                    duration=vdur,
                    rotation=90 * turns,
                )
            audio = None
            if container.streams.audio:
                au = container.streams.audio[0]
                adur = (
                    float(au.duration * au.time_base) if au.duration and au.time_base else duration
                )
                audio = AudioInfo(
                    codec=au.codec_context.name,
                    sample_rate=au.codec_context.sample_rate,
                    channels=au.codec_context.channels,
                    duration=adur,
                )
            return MediaInfo(container=container.format.name, video=video, audio=audio)
    except av.FFmpegError as exc:
        raise InvalidRequestError(f"{label}: the file could not be read as media ({exc})") from exc
