"""The minimal engine: valid media of exactly the promised shape, nothing more.

It exists so the whole job path is real end to end before (and besides) the
preview and model engines: H.264 MP4 at the planned size, rate and length, with
an AAC tone when audio is due, or a ZIP of EXR frames for HDR.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ltxserve.config import Settings
from ltxserve.engines.base import EngineJob, EngineResult, Handler, OutputFile, ProgressCallback
from ltxserve.jobs.contract.requests import BODIES
from ltxserve.media.writer import VideoWriter


class MinimalEngine:
    name = "minimal"

    def __init__(self, settings: Settings) -> None:
        pass  # nothing to configure

    def load(self) -> None:
        pass

    def handlers(self) -> Mapping[str, Handler]:
        routes: dict[str, Handler] = {endpoint: self._video for endpoint in BODIES}
        routes["video-to-video-hdr"] = self._exr_zip
        return routes

    def _video(self, job: EngineJob[Any], progress: ProgressCallback) -> EngineResult:
        plan = job.plan
        out = job.output_dir / "video.mp4"
        ramp = np.linspace(0, 255, plan.width, dtype=np.float32)[None, :, None]
        with VideoWriter(
            out, plan.width, plan.height, plan.fps, audio=plan.audio, engine="minimal"
        ) as writer:
            t_audio = 0
            for i in range(plan.frames):
                shade = (ramp * 0.5 + (i * 4 % 128)).astype(np.uint8)
                frame = np.broadcast_to(shade, (plan.height, plan.width, 3))
                writer.write_frame(np.ascontiguousarray(frame))
                if writer.has_audio:
                    n = writer.audio_samples_due()
                    t = (np.arange(t_audio, t_audio + n) / writer.audio_rate).astype(np.float32)
                    writer.write_audio(0.2 * np.sin(2 * np.pi * 440 * t).astype(np.float32))
                    t_audio += n
                progress((i + 1) / plan.frames)
        return EngineResult({"video_url": OutputFile(out, "video/mp4")})

    def _exr_zip(self, job: EngineJob[Any], progress: ProgressCallback) -> EngineResult:
        from ltxserve.media.exr import encode_exr

        plan = job.plan
        out = job.output_dir / "frames.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for i in range(plan.frames):
                rgb = np.full((plan.height, plan.width, 3), (i + 1) / plan.frames, np.float16)
                zf.writestr(f"frame_{i:05d}.exr", encode_exr(rgb))
                progress((i + 1) / plan.frames)
        return EngineResult({"exr_frames_url": OutputFile(out, "application/zip")})
