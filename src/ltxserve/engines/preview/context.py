"""What every endpoint of the preview engine gets: the job (with its plan), its seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ltxserve.engines.base import EngineJob, ProgressCallback
from ltxserve.engines.plan import OutputPlan
from ltxserve.engines.preview.audio import RATE
from ltxserve.engines.preview.output import PreviewWriter
from ltxserve.jobs.contract.requests import RequestBody
from ltxserve.media.probe import MediaInfo

R = TypeVar("R", bound=RequestBody)


@dataclass(frozen=True)
class Context(Generic[R]):
    job: EngineJob[R]
    seed: int
    progress: ProgressCallback
    threads: int  # the encoder's slice threads (settings.preview_threads; see output.py)

    @property
    def request(self) -> R:
        return self.job.request

    @property
    def plan(self) -> OutputPlan:
        return self.job.plan

    @property
    def infos(self) -> dict[str, MediaInfo]:
        return self.job.infos

    @property
    def prompt(self) -> str:
        return self.job.request.text

    def input(self, field: str) -> Path:
        return self.job.inputs[field]

    def video_path(self) -> Path:
        return self.job.output_dir / "video.mp4"

    def writer(self) -> PreviewWriter:
        """The job's MP4 at the planned size, rate and audio."""
        plan = self.plan
        return PreviewWriter(
            self.video_path(),
            plan.width,
            plan.height,
            plan.fps,
            audio=plan.audio,
            threads=self.threads,
        )

    def samples_at(self, frame: int) -> int:
        """First audio sample (48 kHz) of a frame, exactly as the writer counts."""
        return int(frame * RATE / self.plan.fps)
