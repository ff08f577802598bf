"""Request bodies of the seven operations, validated as the official schemas say.

Each body is one frozen pydantic model (``TextToVideo``, ``Retake``...), and the
same model is the typed request that the plan and the engines read: ``validate``
turns a client's body into the JSON a job stores, ``parse_request`` turns that
stored JSON back into the model where the job is planned and run. So every
documented default (retake's ``mode``, ``fps``, ``model``...) and the reading of
``resolution`` live here once.

Pydantic checks shapes and types strictly (``"true"`` is not a boolean, ``"8"`` is
not a number), with JSON Schema's reading of ``integer``: any number with a zero
fractional part, so ``8.0`` and ``1e1`` are integers and ``8.5`` is not. Every
number must be finite and within a bound, so nothing absurd reaches an engine.
The model table (catalog) checks the combinations. Every rejection becomes
InvalidRequestError with a message naming the field and the rule, e.g.
"prompt is required".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.catalog import Catalog, auto_duration

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
URI_SCHEMES = ("https://", "http://", "data:", "ltx://")
MAX_PROMPT = 5000
MAX_EDIT_SECONDS = 3600  # retake's start_time and duration: past any input's end
DEFAULT_MODEL = "ltx-2-3-pro"  # audio-to-video, retake and extend, when model is left out


def _integral(value: Any) -> Any:
    """JSON Schema's ``integer``: a float with no fractional part is that integer.

    Booleans, strings and fractions are left for the strict check to refuse; the
    fields' bounds then refuse absurd sizes (1e308 is an integer, and too large).
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integral)]


def parse_resolution(value: str, field: str = "resolution") -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``: the one reading of a WIDTHxHEIGHT string."""
    try:
        w, h = value.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise InvalidRequestError(f"{field} must look like WIDTHxHEIGHT, e.g. 1920x1080") from None


class RequestBody(BaseModel):
    """A validated request of one endpoint (``endpoint``), documented defaults filled in.

    Keys of the stored JSON that start with "_" are the server's notes on a job
    (``_duration_auto``, ``_simulate``...): no field, so engines never see them.
    """

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)
    endpoint: ClassVar[str]

    @property
    def text(self) -> str:
        """The prompt; "" when there is none (left out, or an endpoint without one)."""
        return str(getattr(self, "prompt", None) or "")


class TextToVideo(RequestBody):
    endpoint: ClassVar[str] = "text-to-video"
    prompt: str = Field(max_length=MAX_PROMPT)
    model: str
    duration: Integer | None = Field(default=None, ge=1, le=3600)  # None: automatic
    resolution: str
    fps: Integer = Field(default=24, ge=1, le=1000)
    generate_audio: bool = True
    camera_motion: CameraMotion | None = None

    @property
    def size(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)


class ImageToVideo(TextToVideo):
    endpoint: ClassVar[str] = "image-to-video"
    image_uri: str
    last_frame_uri: str | None = None


class AudioToVideo(RequestBody):
    endpoint: ClassVar[str] = "audio-to-video"
    audio_uri: str
    image_uri: str | None = None
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    resolution: str | None = None
    guidance_scale: float | None = Field(default=None, ge=1, le=50)
    model: str = DEFAULT_MODEL

    @property
    def size(self) -> tuple[int, int] | None:
        return parse_resolution(self.resolution) if self.resolution else None


class Retake(RequestBody):
    endpoint: ClassVar[str] = "retake"
    video_uri: str
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    start_time: float = Field(ge=0, le=MAX_EDIT_SECONDS)
    duration: float = Field(ge=2, le=MAX_EDIT_SECONDS)
    mode: Literal["replace_audio", "replace_video", "replace_audio_and_video"] = (
        "replace_audio_and_video"
    )
    resolution: Literal["1920x1080", "1080x1920"] | None = None
    model: str = DEFAULT_MODEL

    @property
    def size(self) -> tuple[int, int] | None:
        return parse_resolution(self.resolution) if self.resolution else None

    @property
    def replaces_video(self) -> bool:
        return self.mode != "replace_audio"

    @property
    def replaces_audio(self) -> bool:
        return self.mode != "replace_video"


class Extend(RequestBody):
    endpoint: ClassVar[str] = "extend"
    video_uri: str
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    duration: float = Field(ge=2, le=20)
    mode: Literal["start", "end"] = "end"
    model: str = DEFAULT_MODEL
    context: float | None = Field(default=None, ge=1, le=20)


class VideoToVideoHdr(RequestBody):
    endpoint: ClassVar[str] = "video-to-video-hdr"
    video_uri: str


class VideoToVideoReframe(RequestBody):
    endpoint: ClassVar[str] = "video-to-video-reframe"
    video_uri: str
    model: str
    resolution: Literal[
        "720x720",
        "1080x1080",
        "720x900",
        "1080x1350",
        "900x720",
        "1350x1080",
        "720x1280",
        "1080x1920",
        "1280x720",
        "1920x1080",
    ]

    @property
    def size(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)


BODIES: dict[str, type[RequestBody]] = {
    body.endpoint: body
    for body in (
        TextToVideo,
        ImageToVideo,
        AudioToVideo,
        Retake,
        Extend,
        VideoToVideoHdr,
        VideoToVideoReframe,
    )
}
ENDPOINTS = tuple(BODIES)
URI_FIELDS = ("image_uri", "last_frame_uri", "audio_uri", "video_uri")

_TYPE_WORDS = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "a boolean",
    "float_type": "a number",
    "int_from_float": "an integer",
    "dict_type": "an object",
    "finite_number": "a finite number",
}


def _message(err: dict[str, Any], body: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "body"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f"{field} is required"
    if kind == "literal_error":
        return f"{field} must be one of {ctx.get('expected', '').replace(chr(39), '')}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{field} must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"{field} must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_long":
        return f"{field} must be at most {ctx.get('max_length')} characters"
    if kind in _TYPE_WORDS:
        if body.get(field, 0) is None:
            return f"{field} must not be null"
        return f"{field} must be {_TYPE_WORDS[kind]}"
    return f"{field}: {err['msg']}"


def _body(endpoint: str) -> type[RequestBody]:
    body = BODIES.get(endpoint)
    if body is None:
        raise InvalidRequestError(f"unknown endpoint {endpoint}")
    return body


def parse_request(endpoint: str, stored: Mapping[str, Any]) -> RequestBody:
    """The typed request of a stored job, from the JSON ``validate`` returned.

    Used where the job is planned and run. That JSON was checked and normalised at
    submit, so it is read back as it is, not checked again; a field it lacks takes
    the model's default, and the server's "_" notes are dropped.
    """
    return _body(endpoint).model_construct(**stored)


def validate(endpoint: str, body: Any, catalog: Catalog) -> dict[str, Any]:
    """Validate one request body; return it normalised with documented defaults filled in.

    This JSON is what a job stores (``parse_request`` reads it back). Keys starting
    with "_" are the server's notes (``_duration_auto``, ``_audio_max_seconds``),
    kept with the job and never passed to an engine.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    try:
        parsed = _body(endpoint).model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise InvalidRequestError(_message(dict(first), body)) from None
    data = parsed.model_dump()
    for field in URI_FIELDS:
        value = data.get(field)
        if value is None:
            continue
        if not value.strip():
            raise InvalidRequestError(f"{field} must not be empty")
        if not value.startswith(URI_SCHEMES):
            raise InvalidRequestError(
                f"{field} must be an https:// URL, a data: URI or an ltx:// storage URI"
            )
    spec = catalog.model_for(data["model"], endpoint) if "model" in data else None
    if endpoint in ("text-to-video", "image-to-video"):
        assert spec is not None
        if not data["prompt"].strip():
            raise InvalidRequestError("prompt is required")
        parse_resolution(data["resolution"])
        if "duration" not in body and not spec.auto_duration:
            raise InvalidRequestError("duration is required")
        catalog.check_combination(spec, data["resolution"], data["fps"], data["duration"])
        if data.get("last_frame_uri") and not spec.last_frame:
            raise InvalidRequestError(f"last_frame_uri is not supported by model {spec.name}")
        if data.get("camera_motion") and not spec.camera_motion:
            raise InvalidRequestError(f"camera_motion is not supported by model {spec.name}")
        if data["duration"] is None:
            # Chosen here, once, by the documented rule, so that every engine renders
            # the same length and the status object can tell it (docs/api.md).
            durations = spec.durations(data["resolution"], data["fps"])
            data["duration"] = auto_duration(data["prompt"], durations)
            data["_duration_auto"] = True
    elif endpoint == "audio-to-video":
        assert spec is not None
        if data["prompt"] is None and data["image_uri"] is None:
            raise InvalidRequestError("prompt is required when image_uri is not provided")
        if "duration" in body and body["duration"] is None:
            # an ask for automatic length that this endpoint cannot honour: say so
            raise InvalidRequestError(
                "duration must not be null: audio-to-video takes no duration (the video is "
                "as long as audio_uri)"
            )
        # the longest audio the model takes at the requested resolution (or at the
        # default 1920x1080 / 1080x1920, which share one tier); inputs/rules.py checks it
        data["_audio_max_seconds"] = catalog.audio_limit(spec, data["resolution"] or "1920x1080")
        if data["guidance_scale"] is None:
            data["guidance_scale"] = 9.0 if data["image_uri"] else 5.0
    elif endpoint == "extend":
        if data["context"] is not None and data["context"] + data["duration"] <= 0:
            raise InvalidRequestError("context must be at least 1")
    return data
