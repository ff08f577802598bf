"""Decoding inputs for the model engine: frames at generation size, audio as float arrays.

Everything streams from the file; only the frames a generation needs are held,
and they are held at generation size (small), never at the input's resolution.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ltxserve.errors import InvalidRequestError
from ltxserve.media import fit
from ltxserve.media.decode import upright

AUDIO_RATE = 48_000


def load_image(path: Path, label: str) -> Image.Image:
    """The input picture as RGB, EXIF orientation applied (as the preview engine reads it)."""
    return fit.load_image(path, label=label)


def iter_video_frames(path: Path) -> Iterator[av.VideoFrame]:
    """Every decoded frame of the first video stream, in order, upright."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield upright(frame)


def read_frames(
    path: Path,
    width: int,
    height: int,
    start: int = 0,
    count: int | None = None,
    pad_to: int | None = None,
) -> NDArray[np.uint8]:
    """Frames ``[start, start + count)`` scaled to width x height, as (n, h, w, 3) uint8.

    Short reads are padded by repeating the last frame up to ``pad_to`` (or count).
    """
    out: list[NDArray[np.uint8]] = []
    end = None if count is None else start + count
    for i, frame in enumerate(iter_video_frames(path)):
        if end is not None and i >= end:
            break
        if i >= start:
            rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
            out.append(np.asarray(rgb, dtype=np.uint8))
    if not out:
        raise InvalidRequestError("video_uri: the video has no frames in the requested range")
    want = pad_to if pad_to is not None else (count if count is not None else len(out))
    while len(out) < want:
        out.append(out[-1])
    return np.stack(out[:want] if pad_to is not None else out)


def read_audio(path: Path, rate: int = AUDIO_RATE) -> NDArray[np.float32]:
    """The first audio stream as stereo float32 (2, n) at ``rate``; empty when there is none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return np.zeros((2, 0), np.float32)
            stream = container.streams.audio[0]
            mono = stream.codec_context.channels == 1  # duplicated below, not downmixed
            resampler = av.AudioResampler(
                format="fltp", layout="mono" if mono else "stereo", rate=rate
            )
            parts: list[NDArray[np.float32]] = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(np.asarray(out.to_ndarray(), dtype=np.float32))
            for out in resampler.resample(None):
                parts.append(np.asarray(out.to_ndarray(), dtype=np.float32))
    except av.FFmpegError as exc:
        raise InvalidRequestError(f"audio: the file could not be decoded ({exc})") from exc
    if not parts:
        return np.zeros((2, 0), np.float32)
    samples = np.concatenate(parts, axis=1)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: NDArray[np.float32], src_rate: int, dst_rate: int) -> NDArray[np.float32]:
    """Resample (channels, n) float audio; stereo out (mono is duplicated)."""
    if samples.ndim == 1:
        samples = samples[None]
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    samples = np.ascontiguousarray(samples[:2], dtype=np.float32)
    if src_rate == dst_rate or samples.shape[1] == 0:
        return samples
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
    frame.sample_rate = src_rate
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=dst_rate)
    parts = [f.to_ndarray() for f in resampler.resample(frame)]
    parts += [f.to_ndarray() for f in resampler.resample(None)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def fit_length(samples: NDArray[np.float32], n: int) -> NDArray[np.float32]:
    """Cut or zero-pad (channels, m) audio to exactly n samples."""
    if samples.shape[1] >= n:
        return samples[:, :n]
    return np.pad(samples, ((0, 0), (0, n - samples.shape[1])))


def splice(
    base: NDArray[np.float32], part: NDArray[np.float32], at: int, fade: int = 480
) -> NDArray[np.float32]:
    """Copy ``part`` into ``base`` from sample ``at`` with short linear crossfades."""
    out = base.copy()
    end = min(out.shape[1], at + part.shape[1])
    if end <= at:
        return out
    part = part[:, : end - at]
    ramp = np.ones(part.shape[1], np.float32)
    k = min(fade, part.shape[1] // 2)
    if k:
        ramp[:k] = np.linspace(0, 1, k, dtype=np.float32)
        ramp[-k:] = np.linspace(1, 0, k, dtype=np.float32)
        if at == 0:
            ramp[:k] = 1
        if end == out.shape[1]:
            ramp[-k:] = 1
    out[:, at:end] = out[:, at:end] * (1 - ramp) + part * ramp
    return out
