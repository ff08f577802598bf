"""What every endpoint handler shares: the job, its plan, its model, grid and time mapping."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from ltxserve.engines.base import EngineJob, ProgressCallback
from ltxserve.engines.ltx.generate import Generation, Output, run_generation
from ltxserve.engines.ltx.geometry import TRAINED_RATES, gen_size, generation_rate
from ltxserve.engines.ltx.loader import LoadedModel
from ltxserve.engines.ltx.media import AUDIO_RATE, fit_length, resample
from ltxserve.engines.ltx.registry import ModelSpec
from ltxserve.engines.plan import OutputPlan
from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.requests import RequestBody, TextToVideo
from ltxserve.media.probe import MediaInfo

log = logging.getLogger(__name__)

CAMERA = {
    "dolly_in": "The camera slowly dollies in.",
    "dolly_out": "The camera slowly dollies out.",
    "dolly_left": "The camera dollies to the left.",
    "dolly_right": "The camera dollies to the right.",
    "jib_up": "The camera jibs up.",
    "jib_down": "The camera jibs down.",
    "static": "The camera is static.",
    "focus_shift": "The focus shifts between subjects.",
}


R = TypeVar("R", bound=RequestBody)


@dataclass
class JobContext(Generic[R]):
    job: EngineJob[R]
    spec: ModelSpec
    model: LoadedModel
    progress: ProgressCallback

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
    def seed(self) -> int:
        if self.spec.seed is not None:
            return self.spec.seed
        return int(hashlib.sha256(self.job.job_id.encode()).hexdigest()[:8], 16)

    @property
    def spatial(self) -> int:
        return int(self.model.base.vae_spatial_compression_ratio)

    @property
    def temporal(self) -> int:
        return int(self.model.base.vae_temporal_compression_ratio)

    def prompt(self) -> str:
        text = self.request.text.strip()
        motion = self.request.camera_motion if isinstance(self.request, TextToVideo) else None
        camera = CAMERA.get(motion or "")
        return f"{text} {camera}".strip() if camera else text

    def grid(self, width: int, height: int, *, two_stage_ok: bool = True) -> tuple[int, int, bool]:
        """Generation size for an output of width x height, and whether to run two stages."""
        spec = self.spec
        area = min(width * height, spec.max_pixels or width * height)
        two = two_stage_ok and spec.upsampler is not None and area >= spec.two_stage_min_pixels
        w, h = gen_size(width, height, self.spatial * (2 if two else 1), spec.max_pixels)
        return w, h, two

    def rate_for(self, seconds: float, fps: Fraction) -> float:
        """The generation rate: the plan's, or a trained rate that fits max_frames (geometry)."""
        rate = generation_rate(seconds, float(fps), self.spec.max_frames, self.temporal)
        if rate < min(TRAINED_RATES):
            log.warning(
                "%s: %.1f s at %s fps does not fit max_frames %d at a trained frame "
                "rate; generating at %.2f fps",
                self.spec.name,
                seconds,
                fps,
                self.spec.max_frames,
                rate,
            )
        return rate

    def generation(
        self,
        kind: str,
        width: int,
        height: int,
        frames: int,
        fps: float,
        two_stage: bool,
        **extra: Any,
    ) -> Generation:
        if frames > self.spec.max_frames:
            raise InvalidRequestError(
                f"this request needs {frames} frames in one generation; the server's model "
                f"{self.spec.name} is configured for at most {self.spec.max_frames}"
            )
        return Generation(
            kind, self.prompt(), width, height, frames, fps, two_stage, extra=extra, seed=self.seed
        )

    def run(self, gen: Generation, lo: float = 0.0, hi: float = 0.9) -> Output:
        return run_generation(
            self.model, self.spec, gen, lambda f: self.progress(lo + (hi - lo) * f)
        )


def generated_audio(out: Output, seconds: float) -> NDArray[np.float32]:
    """A generation's audio at 48 kHz, cut or padded to ``seconds``."""
    if out.audio is None:
        return np.zeros((2, round(seconds * AUDIO_RATE)), np.float32)
    return fit_length(resample(out.audio, out.audio_rate, AUDIO_RATE), round(seconds * AUDIO_RATE))


def time_map(plan_frames: int, gen_frames: int, scale: float) -> Callable[[int], int]:
    """Output frame index -> generated frame index (nearest in time)."""
    return lambda i: min(gen_frames - 1, round(i * scale))
