"""What a job costs in credits: the price table and each endpoint's billed seconds.

The table is data (``data/prices.json``, or ``LTXSERVE_CREDITS_PRICES_FILE``):
credits per second of video per model and resolution tier. The estimate of a
job is ``ceil(rate(model, resolution) x seconds)``, whole credits, computed once
at submit from the typed request (``requests.parse_request``) and held; the same
amount is charged when the job completes (docs/credits.md, "How each endpoint is
priced").

The seconds follow the hosted service's billing notes (openapi.json): the
generated length for text- and image-to-video, the input's length for the
others. An input's length is known at submit when it is a data URI or an
upload (the API probes those): ``input_note`` records it in the job's request
as the server's note ``_input``. An https input is fetched by the worker only,
so its estimate uses the longest input the endpoint accepts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ltxserve.config import ConfigError
from ltxserve.jobs.contract.requests import (
    AudioToVideo,
    Extend,
    Retake,
    TextToVideo,
    VideoToVideoHdr,
    VideoToVideoReframe,
    parse_request,
)

if TYPE_CHECKING:
    from ltxserve.inputs.media import InputInfo

SETTING = "LTXSERVE_CREDITS_PRICES_FILE"
DEFAULT_SIZE = (1920, 1080)  # an endpoint whose output size is the input's, unknown
DEFAULT_FPS = 24.0
EXTEND_MAX_FRAMES = 505  # context + duration, at the input's fps (API-NOTES.md)
EXTEND_MAX_CONTEXT = 20.0
REFRAME_MAX_SECONDS = 60.0
HDR_MAX_FRAMES = ((2073600, 181), (3686400, 101), (8294400, 41))  # by input pixels
PRIMARY_INPUT = {
    "audio-to-video": "audio_uri",
    "retake": "video_uri",
    "extend": "video_uri",
    "video-to-video-hdr": "video_uri",
    "video-to-video-reframe": "video_uri",
}


def input_note(endpoint: str, infos: dict[str, InputInfo]) -> dict[str, Any] | None:
    """What the price needs of the input probed at submit (``_input``), or None."""
    info = infos.get(PRIMARY_INPUT.get(endpoint, ""))
    if info is None or info.duration is None:
        return None
    return {
        "seconds": float(info.duration),
        "width": info.width,
        "height": info.height,
        "fps": float(info.fps) if info.fps else None,
    }


@dataclass(frozen=True)
class Billed:
    """What a job is priced on: a rate's row (model or endpoint), a size and seconds."""

    model: str | None
    size: tuple[int, int]
    seconds: float


def billed(endpoint: str, stored: dict[str, Any]) -> Billed:
    """The seconds and size an endpoint bills, from the job's stored request."""
    req = parse_request(endpoint, stored)
    note = stored.get("_input") or {}
    seconds = note.get("seconds")
    in_size = (note["width"], note["height"]) if note.get("width") and note.get("height") else None
    if isinstance(req, TextToVideo):  # and image-to-video: the generated length
        return Billed(req.model, req.size, float(req.duration or 0))
    if isinstance(req, AudioToVideo):  # the input audio; unknown: the longest allowed
        longest = float(stored.get("_audio_max_seconds") or 20.0)
        return Billed(req.model, req.size or DEFAULT_SIZE, seconds or longest)
    if isinstance(req, Retake):  # the input video; unknown: the section retaken
        return Billed(req.model, req.size or in_size or DEFAULT_SIZE, seconds or req.duration)
    if isinstance(req, Extend):  # the new part plus the context used
        fps = float(note.get("fps") or DEFAULT_FPS)
        context = req.context
        if context is None:  # the documented default: as much as the limits allow
            room = EXTEND_MAX_FRAMES / fps - req.duration
            context = min(EXTEND_MAX_CONTEXT, room, seconds if seconds else room)
        return Billed(req.model, in_size or DEFAULT_SIZE, req.duration + max(0.0, context))
    if isinstance(req, VideoToVideoHdr):  # the input video; unknown: its tier's most frames
        size = in_size or DEFAULT_SIZE
        frames = next((f for px, f in HDR_MAX_FRAMES if size[0] * size[1] <= px), 41)
        return Billed(None, size, seconds or frames / DEFAULT_FPS)
    if isinstance(req, VideoToVideoReframe):  # the input video; unknown: the longest (60 s)
        return Billed(req.model, req.size, seconds or REFRAME_MAX_SECONDS)
    raise ValueError(f"no price rule for {endpoint}")  # pragma: no cover - BODIES is closed


class PriceTable:
    """Credits per second by model (or endpoint) and resolution tier."""

    def __init__(self, data: dict[str, Any]) -> None:
        try:
            tiers = sorted(((int(px), str(name)) for name, px in data["tiers"].items()))
            self.tiers = [name for _, name in tiers]
            self.tier_pixels = [px for px, _ in tiers]
            self.models = {m: self._rates(r) for m, r in data.get("models", {}).items()}
            self.endpoints = {e: self._rates(r) for e, r in data.get("endpoints", {}).items()}
            self.default = self._rates(data["default"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"the credit price table is malformed ({exc.__class__.__name__}: {exc})",
                setting=SETTING,
                doc="docs/credits.md#the-price-table",
            ) from exc

    def _rates(self, rates: dict[str, Any]) -> dict[str, float]:
        out = {str(tier): float(rate) for tier, rate in rates.items()}
        unknown = set(out) - set(self.tiers)
        if unknown or not out or any(not math.isfinite(r) or r < 0 for r in out.values()):
            raise ValueError(f"rates {rates} must be >= 0 and name tiers of {self.tiers}")
        return out

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        try:
            if path is None:
                text = resources.files("ltxserve").joinpath("data/prices.json").read_text()
            else:
                text = Path(path).read_text()
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the credit price table {path}: {exc}",
                setting=SETTING,
                doc="docs/credits.md#the-price-table",
            ) from exc
        return cls(data)

    def tier(self, size: tuple[int, int]) -> str:
        pixels = size[0] * size[1]
        return next(
            (t for t, px in zip(self.tiers, self.tier_pixels, strict=True) if pixels <= px),
            self.tiers[-1],
        )

    def rate(self, endpoint: str, model: str | None, size: tuple[int, int]) -> float:
        """Credits per second: the endpoint's row, else the model's, else the default;
        a tier the row lacks takes the row's next larger tier (else its largest)."""
        rates = self.endpoints.get(endpoint) or self.models.get(model or "") or self.default
        start = self.tiers.index(self.tier(size))
        for tier in self.tiers[start:]:
            if tier in rates:
                return rates[tier]
        return rates[max(rates, key=self.tiers.index)]

    def estimate(self, endpoint: str, stored: dict[str, Any]) -> int:
        """Whole credits a job of this stored request costs (rounded up)."""
        b = billed(endpoint, stored)
        # round away float noise (6 x 2.35 s is 14.100000000000001) before rounding up
        return math.ceil(round(self.rate(endpoint, b.model, b.size) * b.seconds, 6))
