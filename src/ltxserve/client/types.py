"""Typed request bodies and job objects of the LTX Video API (pydantic v2).

Request models only check what is fixed by the contract: field names, types and the
closed enums (camera motion, retake and extend modes). Which model accepts which
resolution, fps and duration has changed over time and is the server's call. A
stale copy of that matrix in the client would reject valid requests, so the client
does not keep one. Unknown fields are refused locally (``extra="forbid"``) to catch
typos; a field that is new on the server can still be sent with ``extra_body=``.

Only fields the caller set are sent (``exclude_unset``), so the server applies its
documented defaults. The defaults written here are those same values, for
reference.

Job objects allow extra properties: the hosted schema does not forbid them, and
ltxserve adds ``progress`` (every state) and ``expires_at`` (ended jobs).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn, Self, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, field_validator

from ltxserve.client._exceptions import error_class

EndpointName = Literal[
    "text-to-video",
    "image-to-video",
    "audio-to-video",
    "retake",
    "extend",
    "video-to-video-hdr",
    "video-to-video-reframe",
]
ENDPOINTS: tuple[EndpointName, ...] = get_args(EndpointName)

CameraMotion = Literal[
    "dolly_in",
    "dolly_out",
    "dolly_left",
    "dolly_right",
    "jib_up",
    "jib_down",
    "static",
    "focus_shift",
]
RetakeMode = Literal["replace_audio", "replace_video", "replace_audio_and_video"]
ExtendMode = Literal["start", "end"]

Uri = str | Path
"""An HTTPS URL, a ``data:`` URI, a ``storage_uri`` from /v1/upload, or a local file.

A ``Path`` (or a string naming an existing file) is uploaded by the client, which
then sends the resulting ``storage_uri`` in its place.
"""


class RequestModel(BaseModel):
    """Common base: which endpoint a body belongs to and how it goes on the wire."""

    model_config = ConfigDict(extra="forbid")
    endpoint: ClassVar[EndpointName]
    nullable: ClassVar[frozenset[str]] = frozenset()
    """Fields whose explicit ``None`` means something and is sent as ``null``."""

    def uri_fields(self) -> dict[str, Uri]:
        """The ``*_uri`` fields that are set, by name."""
        return {
            name: value
            for name in type(self).model_fields
            if name.endswith("_uri") and (value := getattr(self, name)) is not None
        }

    def to_body(self) -> dict[str, Any]:
        """The JSON body: fields the caller set, without ``None`` unless meaningful."""
        data = self.model_dump(mode="json", exclude_unset=True)
        return {k: v for k, v in data.items() if v is not None or k in self.nullable}


class TextToVideoRequest(RequestModel):
    endpoint: ClassVar[EndpointName] = "text-to-video"
    nullable = frozenset({"duration"})  # LTX-2.5: null = automatic length

    prompt: str = Field(max_length=5000)
    model: str
    duration: int | None
    resolution: str
    fps: int = 24
    generate_audio: bool = True
    camera_motion: CameraMotion | None = None


class ImageToVideoRequest(TextToVideoRequest):
    endpoint: ClassVar[EndpointName] = "image-to-video"

    image_uri: Uri
    last_frame_uri: Uri | None = None


class AudioToVideoRequest(RequestModel):
    endpoint: ClassVar[EndpointName] = "audio-to-video"

    audio_uri: Uri
    image_uri: Uri | None = None
    prompt: str | None = None
    resolution: str | None = None  # server default: from the image's orientation
    guidance_scale: float | None = None  # server default: 5, or 9 with an image
    model: str = "ltx-2-3-pro"


class RetakeRequest(RequestModel):
    endpoint: ClassVar[EndpointName] = "retake"

    video_uri: Uri
    start_time: float = Field(ge=0)
    duration: float
    prompt: str | None = None
    mode: RetakeMode = "replace_audio_and_video"
    resolution: str | None = None
    model: str = "ltx-2-3-pro"


class ExtendRequest(RequestModel):
    endpoint: ClassVar[EndpointName] = "extend"

    video_uri: Uri
    duration: float
    prompt: str | None = None
    mode: ExtendMode = "end"
    model: str = "ltx-2-3-pro"
    context: float | None = None  # server default: as much as the frame budget allows


class VideoToVideoHdrRequest(RequestModel):
    endpoint: ClassVar[EndpointName] = "video-to-video-hdr"

    video_uri: Uri


class VideoToVideoReframeRequest(RequestModel):
    endpoint: ClassVar[EndpointName] = "video-to-video-reframe"

    video_uri: Uri
    model: str
    resolution: str


REQUEST_MODELS: dict[EndpointName, type[RequestModel]] = {
    m.endpoint: m
    for m in (
        TextToVideoRequest,
        ImageToVideoRequest,
        AudioToVideoRequest,
        RetakeRequest,
        ExtendRequest,
        VideoToVideoHdrRequest,
        VideoToVideoReframeRequest,
    )
}


class _WireModel(BaseModel):
    """A server object: extra properties kept, the exact JSON received kept too."""

    model_config = ConfigDict(extra="allow")
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The object as the server sent it (timestamps untouched), for ``--json``."""
        return dict(self._raw) if self._raw else self.model_dump(mode="json")


class SubmittedJob(_WireModel):
    """The 202 answer of a submit: a job to poll."""

    id: str
    created_at: datetime


class UploadTicket(_WireModel):
    """The answer of POST /v1/upload: where to PUT the bytes, and what to send after."""

    upload_url: str
    storage_uri: str
    expires_at: datetime
    required_headers: dict[str, str] = Field(default_factory=dict)


class JobError(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    message: str


class _JobBase(_WireModel):
    id: str
    created_at: datetime
    progress: float | None = None
    """ltxserve's extension: fraction done in [0, 1] (0 while pending, 1 once completed,
    where it got to on a failed job). The hosted API omits it."""
    endpoint: str | None = None
    """ltxserve's extension, on jobs from a listing (``client.jobs``): the operation
    that made the job. A status poll's answer has none."""
    terminal: ClassVar[bool] = False

    @field_validator("progress")
    @classmethod
    def _clamp(cls, value: float | None) -> float | None:
        return None if value is None else min(1.0, max(0.0, value))

    def raise_for_status(self) -> Self:
        """Return the job unchanged; only a failed job raises."""
        return self


class PendingJob(_JobBase):
    status: Literal["pending"]


class ProcessingJob(_JobBase):
    status: Literal["processing"]


class CompletedJob(_JobBase):
    status: Literal["completed"]
    completed_at: datetime
    result: dict[str, str]
    engine: str | None = None
    """ltxserve's extension: the engine that made the result (``preview`` is not a
    generative model; docs/preview-engine.md). The hosted API omits it."""
    expires_at: datetime | None = None
    """ltxserve's extension: when the status and result URLs stop being served."""
    terminal = True

    def output_url(self, label: str | None = None) -> str:
        """The URL under ``label``, else ``video_url``, else the only/first result."""
        if label is not None:
            return self.result[label]
        for preferred in ("video_url", "exr_frames_url"):
            if preferred in self.result:
                return self.result[preferred]
        if not self.result:
            raise KeyError("the completed job has no result URLs")
        return next(iter(self.result.values()))


class FailedJob(_JobBase):
    status: Literal["failed"]
    completed_at: datetime
    error: JobError
    expires_at: datetime | None = None
    """ltxserve's extension: when the status stops being served."""
    terminal = True

    @property
    def cancelled(self) -> bool:
        """True when the job was cancelled (``error.type`` ``cancelled_error``)."""
        return self.error.type == "cancelled_error"

    def raise_for_status(self) -> NoReturn:
        """Raise the exception class of ``error.type``, carrying this job."""
        cls = error_class(self.error.type, None)
        raise cls(self.error.message, type=self.error.type, job=self)


JobStatus = Annotated[
    PendingJob | ProcessingJob | CompletedJob | FailedJob, Field(discriminator="status")
]
"""Any job object; narrow on ``.status`` or ``isinstance``."""
TerminalJob = CompletedJob | FailedJob

_STATUS_ADAPTER: TypeAdapter[JobStatus] = TypeAdapter(JobStatus)
_W = TypeVar("_W", bound=_WireModel)


def parse_status(data: dict[str, Any]) -> JobStatus:
    """Validate a job status object and remember the raw JSON."""
    job = _STATUS_ADAPTER.validate_python(data)
    job._raw = dict(data)
    return job


def parse_wire(model: type[_W], data: Any) -> _W:
    """Validate a server object of a fixed type and remember the raw JSON."""
    obj = model.model_validate(data)
    if isinstance(data, dict):
        obj._raw = dict(data)
    return obj


class JobPage(_WireModel):
    """One page of ``GET /v2/jobs`` (ltxserve's extension): the key's jobs, newest first.

    ``client.jobs.pages()`` and ``client.jobs.iter()`` follow ``next_cursor`` for you."""

    data: list[JobStatus]
    has_more: bool
    next_cursor: str | None = None


def parse_page(data: dict[str, Any]) -> JobPage:
    """A listing page, each job parsed as ``parse_status`` does (its raw JSON kept)."""
    page = JobPage(
        data=[parse_status(item) for item in data.get("data", [])],
        has_more=bool(data.get("has_more")),
        next_cursor=data.get("next_cursor"),
    )
    page._raw = dict(data)
    return page


class Generation(BaseModel):
    """What a one-call ``generate`` returns: the completed job and the file written."""

    job: CompletedJob
    path: Path
