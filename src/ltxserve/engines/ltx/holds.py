"""Holding known content fixed during denoising, and per-step progress.

diffusers' LTX-2 pipelines condition on whole frames only (first frame,
keyframes, clips). Audio that must stay as it is (audio-to-video, retake's
replace_video, extend's context) and picture regions that must stay (reframe's
source inside the outpainted canvas) are held by latent replacement: after every
denoising step the held tokens are reset to the clean latents noised to the next
step's sigma, ``(1 - s) * clean + s * noise``. At the last step s = 0, so held
tokens end exactly at their clean encoding and the free tokens have been denoised
alongside them, attending to them at every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray


@dataclass
class Hold:
    """Packed clean latents (1, seq, d) and a (1, seq, 1) mask: 1 = held."""

    clean: torch.Tensor
    mask: torch.Tensor
    noise: torch.Tensor

    def apply(self, latents: torch.Tensor, sigma: float) -> torch.Tensor:
        n = min(latents.shape[1], self.clean.shape[1])
        target = (1 - sigma) * self.clean[:, :n] + sigma * self.noise[:, :n]
        mask = self.mask[:, :n]
        latents[:, :n] = latents[:, :n] * (1 - mask) + target.to(latents.dtype) * mask
        return latents


def _slaney_mel_filters(rate: int, n_fft: int, n_mels: int) -> NDArray[np.float32]:
    """(n_fft//2+1, n_mels) Slaney mel filterbank with Slaney area normalisation."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def to_mel(f: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(
            f >= min_log_hz,
            min_log_mel + np.log(np.maximum(f, 1e-9) / min_log_hz) / logstep,
            f / f_sp,
        )

    def to_hz(m: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(
            m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), m * f_sp
        )

    fft_freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    hz = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(rate / 2)), n_mels + 2))
    ramps = hz[:, None] - fft_freqs[None, :]
    fdiff = np.diff(hz)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return weights.T.astype(np.float32)


def log_mel(
    samples: NDArray[np.float32], rate: int, hop: int, n_mels: int, n_fft: int = 1024
) -> torch.Tensor:
    """The audio VAE's input: log magnitude mel spectrogram, (1, channels, frames, n_mels)."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop,
        win_length=n_fft,
        window=torch.hann_window(n_fft),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    filters = torch.from_numpy(_slaney_mel_filters(rate, n_fft, n_mels))
    mel = torch.matmul(spec.transpose(1, 2), filters)
    return torch.log(mel.clamp(min=1e-5)).unsqueeze(0)


@torch.no_grad()
def audio_hold(
    pipe: Any,
    samples: NDArray[np.float32],
    rate: int,
    frames: int,
    fps: float,
    held: NDArray[np.bool_],
    generator: torch.Generator,
) -> Hold:
    """Hold (parts of) a waveform: ``held`` marks held audio per video frame of the span."""
    from ltxserve.engines.ltx.media import fit_length, resample

    vae = pipe.audio_vae
    sr, hop = int(vae.config.sample_rate), int(vae.config.mel_hop_length)
    wave = fit_length(resample(samples, rate, sr), round(frames / fps * sr))
    mel = log_mel(wave, sr, hop, int(vae.config.mel_bins)).to(pipe._execution_device, vae.dtype)
    latents = vae.encode(mel).latent_dist.mode().float()  # (1, C, T, M)
    length = round(frames / fps * sr / hop / pipe.audio_vae_temporal_compression_ratio)
    if latents.shape[2] < length:
        latents = torch.nn.functional.pad(latents, (0, 0, 0, length - latents.shape[2]))
    latents = latents[:, :, :length]
    packed = pipe._pack_audio_latents(latents)
    clean = pipe._normalize_audio_latents(packed, vae.latents_mean, vae.latents_std)
    idx = np.minimum((np.arange(length) + 0.5) / length * len(held), len(held) - 1).astype(int)
    mask = torch.from_numpy(held[idx].astype(np.float32)).to(clean.device)[None, :, None]
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype).to(clean.device)
    return Hold(clean, mask, noise)


PIXEL_CHUNK = 8  # frames converted at a time by vae_pixels


@torch.no_grad()
def vae_pixels(
    clip: NDArray[np.uint8], device: Any, dtype: torch.dtype, chunk: int = PIXEL_CHUNK
) -> torch.Tensor:
    """A uint8 clip (f, h, w, 3) as the VAE's input (1, 3, f, h, w) in [-1, 1], in its dtype.

    The result is allocated once, in the VAE's dtype, and filled ``chunk`` frames at
    a time; only a chunk is ever held in float32 (a 505-frame 1280x704 clip is 5.5 GB
    in float32, 2.7 GB in bfloat16). Each value is the float32 ``x / 127.5 - 1``
    rounded once to ``dtype``, exactly what converting the whole clip would give.
    """
    f, h, w, _ = clip.shape
    out = torch.empty((1, 3, f, h, w), dtype=dtype, device=device)
    for start in range(0, f, chunk):
        part = torch.from_numpy(np.ascontiguousarray(clip[start : start + chunk])).to(device)
        out[0, :, start : start + chunk] = part.permute(3, 0, 1, 2).float().div_(127.5).sub_(1)
        del part
    return out


@torch.no_grad()
def video_hold(
    pipe: Any, canvas: NDArray[np.uint8], known: NDArray[np.bool_], generator: torch.Generator
) -> Hold:
    """Hold the ``known`` pixels (h, w) of a canvas video (f, h, w, 3) at latent resolution.

    A latent cell is held only when every pixel under it is known, so the seam is
    always regenerated. The canvas goes to the device in the VAE's dtype, a few
    frames at a time (:func:`vae_pixels`), and is released as soon as it is encoded.
    """
    vae = pipe.vae
    device = pipe._execution_device
    pixels = vae_pixels(canvas, device, vae.dtype)
    latents = vae.encode(pixels).latent_dist.mode().float()
    del pixels
    clean = pipe._pack_latents(
        pipe._normalize_latents(
            latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
        ),
        pipe.transformer_spatial_patch_size,
        pipe.transformer_temporal_patch_size,
    )
    _, _, lf, lh, lw = latents.shape
    cell = torch.from_numpy(known.astype(np.float32))[None, None]
    cell = -torch.nn.functional.adaptive_max_pool2d(-cell, (lh, lw))  # min-pool: all known
    mask = cell[:, :, None].expand(1, 1, lf, lh, lw).to(device)
    packed_mask = pipe._pack_latents(
        mask, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    )
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype).to(clean.device)
    return Hold(clean, packed_mask, noise)


def step_callback(
    video: Hold | None, audio: Hold | None, on_step: Callable[[int, int], None]
) -> tuple[Callable[..., Any], list[str]]:
    """A callback_on_step_end applying the holds and reporting (step, total) progress."""

    def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        sigmas = pipe.scheduler.sigmas
        sigma = float(sigmas[i + 1]) if i + 1 < len(sigmas) else 0.0
        out: dict[str, Any] = {}
        if video is not None:
            out["latents"] = video.apply(kwargs["latents"], sigma)
        if audio is not None:
            audio.apply(kwargs["audio_latents"], sigma)  # in place: not returned by the pipeline
        on_step(i + 1, len(sigmas) - 1)
        return out

    inputs = ["latents"] + (["audio_latents"] if audio is not None else [])
    return callback, inputs
