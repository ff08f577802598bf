"""What every endpoint of the preview engine gets: the job, its plan, its seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltxserve.engines.base import EngineJob, ProgressCallback
from ltxserve.engines.plan import OutputPlan
from ltxserve.engines.preview.audio import RATE
from ltxserve.media.probe import MediaInfo


@dataclass(frozen=True)
class Context:
    job: EngineJob
    plan: OutputPlan
    infos: dict[str, MediaInfo]
    seed: int
    progress: ProgressCallback

    @property
    def request(self) -> dict[str, Any]:
        return self.job.request

    @property
    def prompt(self) -> str:
        return str(self.job.request.get("prompt") or "")

    def input(self, field: str) -> Path:
        return self.job.inputs[field]

    def video_path(self) -> Path:
        return self.job.output_dir / "video.mp4"

    def samples_at(self, frame: int) -> int:
        """First audio sample (48 kHz) of a frame, exactly as the writer counts."""
        return int(frame * RATE / self.plan.fps)
