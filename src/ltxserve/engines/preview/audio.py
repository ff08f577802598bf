"""Procedural soundtrack from the prompt's theme, and audio analysis for audio-to-video.

The synth is a pure function of (theme, seed, absolute sample index): any chunking
gives the same samples, so it streams in per-frame pieces and stays
deterministic. Three voices: a slowly breathing chord pad (major or minor by the
theme's mood), a plucked pentatonic melody at the theme's tempo, and a texture of
filtered noise (surf, wind, rain, crackle or hum) from a looped, seeded table.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ltxserve.engines.preview.prompt import Theme

F32 = NDArray[np.float32]
RATE = 48_000
TABLE = 1 << 17  # noise loop length (2.7 s at 48 kHz)


def _filtered_noise(rng: np.random.Generator, kind: str, rate: int) -> NDArray[np.float64]:
    noise = rng.standard_normal(TABLE)
    if kind in ("none", "hum"):
        return np.zeros(TABLE)
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(TABLE, 1 / rate)
    if kind == "surf":
        shape = 1 / (1 + (f / 500) ** 2)
    elif kind == "wind":
        shape = np.exp(-(((np.log(f + 1) - math.log(600)) / 0.5) ** 2))
    elif kind == "rain":
        shape = 1 / (1 + (2500 / (f + 1)) ** 2)
    else:  # crackle: sparse clicks
        clicks = np.where(rng.random(TABLE) < 0.0015, rng.standard_normal(TABLE) * 6, 0.0)
        decay = np.exp(-np.arange(96) / 12)
        return np.convolve(clicks, decay, mode="same")
    out = np.fft.irfft(spec * shape, TABLE)
    return out / (np.std(out) + 1e-9)


class Synth:
    """A deterministic, stateless-in-time soundtrack; ``render(start, n)`` -> (2, n)."""

    def __init__(self, theme: Theme, seed: int, total: int, rate: int = RATE) -> None:
        rng = np.random.default_rng(seed ^ 0x5EED)
        self.rate, self.total, self.theme = rate, total, theme
        root = 110.0 * 2 ** (int(rng.integers(-5, 5)) / 12)
        third = 3 if theme.minor else 4
        self.pad = root * 2 ** (np.array([0, 7, 12 + third, 19]) / 12)
        self.pad_lfo = rng.uniform(0.05, 0.25, 4)
        self.pad_phase = rng.uniform(0, 2 * math.pi, 4)
        self._pad2 = 2 * math.pi * np.concatenate([self.pad, self.pad * 1.002])
        scale = [0, 3, 5, 7, 10] if theme.minor else [0, 2, 4, 7, 9]
        degrees = np.array([s + 12 * o for o in (1, 2) for s in scale])
        steps = 64
        walk = np.clip(np.cumsum(rng.integers(-2, 3, steps)) + 4, 0, len(degrees) - 1)
        self.melody = root * 2 ** (degrees[walk] / 12)
        self.gate = (rng.random(steps) > 0.3).astype(np.float64)
        self.pan = rng.uniform(-0.5, 0.5, steps)
        self.beat = 60.0 / theme.tempo
        self.noise = _filtered_noise(rng, theme.noise, rate)
        self.swell = {"surf": 0.12, "wind": 0.07}.get(theme.noise, 0.0)

    def render(self, start: int, n: int) -> F32:
        s = np.arange(start, start + n)
        t = s / self.rate
        # pad: 4 notes x 2 channels (the right one detuned) in one sin call
        amp = 0.045 * (
            0.6
            + 0.4
            * np.sin(np.multiply.outer(2 * math.pi * self.pad_lfo, t) + self.pad_phase[:, None])
        )
        osc = np.sin(np.multiply.outer(self._pad2, t)).reshape(2, 4, n)
        out = np.einsum("ckn,kn->cn", osc, amp)
        step = (t // self.beat).astype(np.intp)
        tau = t - step * self.beat
        idx = step % len(self.melody)
        phase = (2 * math.pi) * self.melody[idx] * tau
        env = (
            np.minimum(1.0, tau / 0.008)
            * np.exp(-tau * 4 / self.beat)
            * (1 - tau / self.beat)
            * self.gate[idx]
        )
        tone = 0.2 * env * (np.sin(phase) + 0.3 * np.sin(2 * phase))
        pan = self.pan[idx]
        out[0] += tone * (1 - pan)
        out[1] += tone * (1 + pan)
        if self.theme.noise not in ("none", "hum"):
            level = np.full(n, 0.07)
            if self.swell:
                level *= 0.35 + 0.65 * (0.5 + 0.5 * np.sin(2 * math.pi * self.swell * t)) ** 2
            out[0] += level * self.noise[s % TABLE]
            out[1] += level * self.noise[(s + TABLE // 2) % TABLE]
        elif self.theme.noise == "hum":
            out += 0.03 * np.sin(2 * math.pi * 55 * t) * (0.7 + 0.3 * np.sin(2 * math.pi * 0.3 * t))
        gain = np.minimum(1.0, t / 0.05) * np.clip((self.total - s) / (0.4 * self.rate), 0, 1)
        out *= gain
        result: F32 = np.clip(out, -0.98, 0.98).astype(np.float32)
        return result


class Analyzer:
    """Per-frame loudness and a log-spaced spectrum (0..1 per band) with bar-graph decay."""

    def __init__(self, bands: int = 48, rate: int = RATE) -> None:
        self.bands, self.rate = bands, rate
        self.levels = np.zeros(bands)
        self.edges = np.geomspace(40.0, min(16_000.0, rate / 2.2), bands + 1)

    def update(self, chunk: F32) -> tuple[NDArray[np.float64], float]:
        mono = chunk.mean(axis=0).astype(np.float64)
        n = len(mono)
        if n < 8:
            self.levels *= 0.85
            return self.levels, 0.0
        rms = float(np.sqrt(np.mean(mono**2)))
        power = np.abs(np.fft.rfft(mono * np.hanning(n))) ** 2
        freqs = np.fft.rfftfreq(n, 1 / self.rate)
        steps = np.arange(len(self.edges))
        bins = np.maximum.accumulate(np.searchsorted(freqs, self.edges) - steps) + steps + 1
        bins = np.minimum(bins, len(power) - 1)
        sums = np.add.reduceat(power, bins[:-1])[: self.bands]
        counts = np.maximum(np.diff(bins), 1)
        mean = sums / counts
        db = 10 * np.log10(mean / (n * n / 8) + 1e-12)
        fresh = np.clip((db + 70) / 64, 0, 1)
        self.levels = np.maximum(fresh, self.levels * 0.82)
        return self.levels, rms
