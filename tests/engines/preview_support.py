"""Media makers, decoders and measures for the preview engine's tests (and its bench)."""

from __future__ import annotations

import wave
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ltxserve.config import Settings
from ltxserve.engines.base import EngineResult
from ltxserve.engines.dispatch import run_job
from ltxserve.engines.preview import PreviewEngine
from ltxserve.media.writer import VideoWriter

RATE = 48_000


# --- making inputs ---------------------------------------------------------------------


def picture(width: int, height: int, seed: int = 0) -> NDArray[np.uint8]:
    """A smooth, structured test picture (gradients, soft blobs, a few shapes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    small = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    blobs = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), np.float32)
    base = np.stack([xx / width * 200, yy / height * 200, (1 - xx / width) * 160], -1)
    img = Image.fromarray(np.clip(base * 0.5 + blobs * 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.15) * min(width, height)
        colour = tuple(int(c) for c in rng.integers(30, 255, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return np.asarray(img)


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    Image.fromarray(picture(width, height, seed)).save(path)
    return path


def tone(seconds: float, rate: int = RATE, seed: int = 1) -> NDArray[np.float32]:
    """A stereo signal with structure (chirp + noise bursts) for correlation checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chirp = 0.25 * np.sin(2 * np.pi * (200 + 150 * t) * t)
    bursts = 0.15 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 1.3 * t) > 0.3)
    left = chirp + bursts
    right = 0.8 * chirp - bursts
    return np.stack([left, right]).astype(np.float32)


def write_wav(path: Path, samples: NDArray[np.float32], rate: int = RATE) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.T.tobytes())
    return path


def write_video(
    path: Path,
    width: int,
    height: int,
    fps: int,
    frames: int,
    audio: bool = True,
    seed: int = 0,
    crf: int = 12,
) -> Path:
    """A moving picture (the test picture panning and brightening) with a tone track."""
    big = picture(width + frames * 2 + 2, height, seed)
    sound = tone(frames / fps + 1, seed=seed)
    with VideoWriter(path, width, height, fps, audio=audio, crf=crf) as w:
        pos = 0
        for i in range(frames):
            frame = big[:, i * 2 : i * 2 + width].astype(np.int16) + (i % 40)
            w.write_frame(np.clip(frame, 0, 255).astype(np.uint8))
            if audio:
                n = w.audio_samples_due()
                w.write_audio(np.ascontiguousarray(sound[:, pos : pos + n]))
                pos += n
    return path


# --- running -----------------------------------------------------------------------------


def run(
    tmp: Path,
    endpoint: str,
    request: dict[str, Any],
    inputs: dict[str, Path] | None = None,
    name: str = "out",
) -> EngineResult:
    out = tmp / name
    out.mkdir(parents=True, exist_ok=True)
    seen: list[float] = []
    engine = PreviewEngine(Settings())
    result = run_job(engine, name, endpoint, request, inputs or {}, out, seen.append)
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    assert result.metadata.get("engine") == "preview"
    return result


def t2v_request(
    prompt: str = "a calm ocean at sunset",
    *,
    resolution: str = "320x180",
    duration: int = 2,
    fps: int = 24,
    audio: bool = False,
    camera_motion: str | None = None,
) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "model": "ltx-2-3-fast",
        "duration": duration,
        "resolution": resolution,
        "fps": fps,
        "generate_audio": audio,
        "camera_motion": camera_motion,
    }


# --- reading outputs ---------------------------------------------------------------------


@dataclass
class Decoded:
    frames: list[NDArray[np.uint8]]  # RGB
    fps: Fraction
    width: int
    height: int
    codec: str
    pix_fmt: str
    audio: NDArray[np.float32] | None  # (2, n) at the stream's rate
    audio_rate: int
    audio_codec: str
    audio_profile: str | None
    audio_channels: int


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames = [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in c.decode(vs)]
        fps = Fraction(vs.average_rate or 0)
        info = (
            vs.codec_context.width,
            vs.codec_context.height,
            vs.codec_context.name,
            str(vs.codec_context.pix_fmt),
        )
    audio, rate, acodec, profile, channels = None, 0, "", None, 0
    with av.open(str(path)) as c:
        if c.streams.audio:
            st = c.streams.audio[0]
            rate, acodec, profile = (
                st.codec_context.sample_rate,
                st.codec_context.name,
                st.codec_context.profile,
            )
            channels = st.codec_context.channels
            audio = read_audio(path)
    return Decoded(
        frames, fps, info[0], info[1], info[2], info[3], audio, rate, acodec, profile, channels
    )


def read_audio(path: Path, rate: int = RATE) -> NDArray[np.float32]:
    """Any file's first audio stream as (2, n) float32 at ``rate``."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
    chunks = []
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.audio[0]):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
    return np.concatenate(chunks, axis=1).astype(np.float32)


def exr_frames(path: Path) -> tuple[list[str], list[NDArray[np.float16]]]:
    from ltxserve.media.exr import decode_exr

    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        return names, [decode_exr(zf.read(n)) for n in names]


# --- measures ----------------------------------------------------------------------------


def psnr(a: NDArray[Any], b: NDArray[Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def luma(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return out


def shift(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> tuple[int, int]:
    """Phase correlation: (dx, dy) by which the content of ``b`` sits moved from ``a``."""
    la, lb = luma(a), luma(b)
    h, w = la.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    fa, fb = np.fft.fft2((la - la.mean()) * win), np.fft.fft2((lb - lb.mean()) * win)
    r = fb * np.conj(fa)
    corr = np.fft.ifft2(r / (np.abs(r) + 1e-9)).real
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return (int(dx) - w if dx > w // 2 else int(dx)), (int(dy) - h if dy > h // 2 else int(dy))


def _centre_zoom(img: NDArray[np.uint8], factor: float) -> NDArray[np.float64]:
    """The centre 1/factor of ``img`` scaled back to full size."""
    h, w = img.shape[:2]
    cw, ch = w / factor, h / factor
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    im = Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR, box=box)
    return luma(np.asarray(im))


def zoom_factor(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """How much ``b`` is magnified relative to ``a`` (best of a grid of candidates)."""
    best, best_err = 1.0, float("inf")
    for s in np.round(np.arange(0.7, 1.45, 0.025), 3):
        if s >= 1:
            err = float(np.mean((_centre_zoom(a, s) - luma(b)) ** 2))
        else:
            err = float(np.mean((luma(a) - _centre_zoom(b, 1 / s)) ** 2))
        if err < best_err:
            best, best_err = float(s), err
    return best


def sharpness(rgb: NDArray[np.uint8]) -> float:
    y = luma(rgb)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.mean(np.abs(lap)))


def correlation(a: NDArray[np.float32], b: NDArray[np.float32], max_lag: int = 4096) -> float:
    """Best normalised correlation of two (2, n) signals over lags up to ``max_lag``."""
    x, y = a.mean(axis=0).astype(np.float64), b.mean(axis=0).astype(np.float64)
    n = min(len(x), len(y))
    if n == 0:
        return 0.0
    x, y = x[:n], y[:n]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    c = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    lags = np.concatenate([c[: max_lag + 1], c[size - max_lag :]])
    den = np.sqrt(np.sum(x**2) * np.sum(y**2)) + 1e-12
    return float(lags.max() / den)
