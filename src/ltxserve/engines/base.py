"""The one interface every generation backend implements.

An engine turns a typed request plus resolved local input files into output
files. It runs inside the worker's runner child process (see ltxserve.runner),
never in the API's event loop, so it may block, use every core, or hold GPU
memory for as long as the process lives. ``load`` is called once per process
(weights stay resident between jobs). Per job, ``engines.dispatch.run_job``
parses the stored request, probes the inputs and plans the output (engines.plan),
then calls the engine's handler for the endpoint: an engine says how it makes
each endpoint's media, never which endpoint a job is or what its output must be.

An engine is built with the deployment's ``Settings`` (``engines.get_engine``)
and reads its configuration from them alone, never from the environment; it
imports no server layer (api, the job store and lifecycle, the worker).

Errors: raise an ltxserve.errors.LtxError subclass (usually InvalidRequestError
for unusable media) for a failure that belongs to the job; any other exception is
recorded as api_error. A crash of the process is told apart by the worker and
retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from ltxserve.engines.plan import OutputPlan
from ltxserve.jobs.contract.requests import RequestBody
from ltxserve.media.probe import MediaInfo

ProgressCallback = Callable[[float], None]
"""Called with a fraction in [0, 1]; cheap, may be called per frame or per step."""

JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
"""A value that JSON can hold, so engine metadata can cross the runner's pipe and be
stored with the job's result (read-only containers: ``[start, end]`` of ints fits)."""

Metadata = Mapping[str, JsonValue]

R = TypeVar("R", bound=RequestBody)


@dataclass(frozen=True)
class EngineJob(Generic[R]):
    """Everything an engine needs for one job, built once by ``engines.dispatch``.

    A handler names its endpoint's request type (``EngineJob[Retake]``) and reads
    typed fields, with the contract's defaults already filled in.
    """

    job_id: str
    request: R  # the typed request (jobs.contract.requests)
    inputs: dict[str, Path]  # field name ("image_uri", "video_uri", ...) -> local file
    infos: dict[str, MediaInfo]  # the same fields, probed
    plan: OutputPlan  # what the output must be (engines.plan)
    output_dir: Path  # empty directory the engine writes its outputs into

    @property
    def endpoint(self) -> str:
        return self.request.endpoint


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


Handler = Callable[[EngineJob[Any], ProgressCallback], EngineResult]
"""Makes one endpoint's outputs; the job's request is that endpoint's type."""


class Engine(Protocol):
    name: str

    def load(self) -> None:
        """Prepare once per process (load weights, warm caches); raise on bad config."""

    def handlers(self) -> Mapping[str, Handler]:
        """Endpoint ("text-to-video", ...) -> its handler; called after ``load``."""
        ...
