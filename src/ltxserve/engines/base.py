"""The one interface every generation backend implements.

An engine turns a validated request plus resolved local input files into output
files. It runs inside the worker's runner child process (see ltxserve.runner),
never in the API's event loop, so it may block, use every core, or hold GPU
memory for as long as the process lives. ``load`` is called once per process
(weights stay resident between jobs); ``run`` once per job.

Errors: raise an ltxserve.errors.LtxError subclass (usually InvalidRequestError
for unusable media) for a failure that belongs to the job; any other exception is
recorded as api_error. A crash of the process is told apart by the worker and
retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ProgressCallback = Callable[[float], None]
"""Called with a fraction in [0, 1]; cheap, may be called per frame or per step."""

JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
"""A value that JSON can hold, so engine metadata can cross the runner's pipe and be
stored with the job's result (read-only containers: ``[start, end]`` of ints fits)."""

Metadata = Mapping[str, JsonValue]


@dataclass(frozen=True)
class EngineJob:
    """Everything an engine needs for one job."""

    job_id: str
    endpoint: str  # "text-to-video", ..., "video-to-video-reframe"
    request: dict[str, Any]  # validated body with documented defaults filled in
    inputs: dict[str, Path]  # field name ("image_uri", "video_uri", ...) -> local file
    output_dir: Path  # empty directory the engine writes its outputs into


@dataclass(frozen=True)
class OutputFile:
    path: Path
    content_type: str


@dataclass
class EngineResult:
    """Result label (``video_url`` / ``exr_frames_url``) -> file written by the engine,
    and what the engine says about how it made them (``engine``, ``seed``, ``model``...):
    the worker stores it with the job's result, next to each output."""

    outputs: dict[str, OutputFile]
    metadata: Metadata = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def load(self) -> None:
        """Prepare once per process (load weights, warm caches); raise on bad config."""

    def run(self, job: EngineJob, progress: ProgressCallback) -> EngineResult:
        """Produce the outputs for one job."""
        ...
