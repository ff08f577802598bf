"""The model table: which model accepts which endpoint, resolution, fps and duration.

The hosted matrix has changed over time, so it is data (``data/models.json`` or
``LTXSERVE_MODELS_FILE``), not code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ltxserve.errors import InvalidRequestError

AUTO_BASE_SECONDS = 3.0
AUTO_CHARS_PER_SECOND = 60.0


def auto_duration(prompt: str, durations: list[int]) -> int:
    """The automatic length (``duration: null``), the same for every engine.

    A prompt that describes more takes longer to show: 3 s plus one second per 60
    characters, rounded up to the next duration the model offers at the requested
    resolution and fps, and capped at the longest. Characters, not words, so that
    prompts in scripts without spaces are measured too. Deterministic: the same
    prompt always gets the same length.
    """
    if not durations:
        raise InvalidRequestError("no duration is offered for this combination")
    wanted = AUTO_BASE_SECONDS + len(prompt.strip()) / AUTO_CHARS_PER_SECOND
    return next((d for d in sorted(durations) if d >= wanted), max(durations))


@dataclass(frozen=True)
class Rule:
    resolutions: frozenset[str]
    fps: frozenset[int]
    durations: tuple[int, ...]


@dataclass(frozen=True)
class AudioRule:
    """audio-to-video: resolutions the model renders, and the longest audio it takes there."""

    resolutions: frozenset[str]
    max_audio_seconds: float


@dataclass(frozen=True)
class ModelSpec:
    name: str
    status: str  # current | deprecated | removed
    tier: str
    endpoints: frozenset[str]
    last_frame: bool
    auto_duration: bool
    camera_motion: bool
    rules: tuple[Rule, ...]
    audio_rules: tuple[AudioRule, ...]
    message: str

    def durations(self, resolution: str, fps: int) -> list[int]:
        """Every duration a rule offers at ``resolution`` and ``fps``, ascending."""
        return sorted(
            {
                d
                for r in self.rules
                if resolution in r.resolutions and fps in r.fps
                for d in r.durations
            }
        )


class Catalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.models: dict[str, ModelSpec] = {}
        for name, spec in data["models"].items():
            rules = tuple(
                Rule(frozenset(r["resolutions"]), frozenset(r["fps"]), tuple(r["durations"]))
                for r in spec.get("rules", [])
            )
            self.models[name] = ModelSpec(
                name=name,
                status=spec.get("status", "current"),
                tier=spec.get("tier", "pro"),
                endpoints=frozenset(spec.get("endpoints", [])),
                last_frame=bool(spec.get("last_frame", False)),
                auto_duration=bool(spec.get("auto_duration", False)),
                camera_motion=bool(spec.get("camera_motion", True)),
                rules=rules,
                audio_rules=tuple(
                    AudioRule(frozenset(r["resolutions"]), float(r["max_audio_seconds"]))
                    for r in spec.get("audio_rules", [])
                ),
                message=spec.get("message", f"model {name} is no longer available"),
            )

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        if path is None:
            text = resources.files("ltxserve").joinpath("data/models.json").read_text()
        else:
            text = Path(path).read_text()
        return cls(json.loads(text))

    def usable(self) -> list[str]:
        return [m.name for m in self.models.values() if m.status != "removed"]

    def model_for(self, name: str, endpoint: str) -> ModelSpec:
        spec = self.models.get(name)
        if spec is None:
            raise InvalidRequestError(
                f"model must be one of {', '.join(self.usable())} (got {name!r})"
            )
        if spec.status == "removed":
            raise InvalidRequestError(spec.message)
        if endpoint not in spec.endpoints:
            raise InvalidRequestError(
                f"model {name} does not support {endpoint}; "
                f"use {' or '.join(self.able(endpoint)) or 'another model'}"
            )
        return spec

    def able(self, endpoint: str) -> list[str]:
        """Usable models that serve ``endpoint``, in table order."""
        return [
            m.name
            for m in self.models.values()
            if endpoint in m.endpoints and m.status != "removed"
        ]

    def check_combination(
        self, spec: ModelSpec, resolution: str, fps: int, duration: int | None
    ) -> None:
        """Reject (never downgrade) a resolution x fps x duration the model does not offer."""
        if duration is None and not spec.auto_duration:
            auto = [
                m.name for m in self.models.values() if m.auto_duration and m.status != "removed"
            ]
            raise InvalidRequestError(
                f"duration must not be null for model {spec.name}; automatic duration "
                f"(null) needs {' or '.join(auto) or 'another model'}"
            )
        res_ok = [r for r in spec.rules if resolution in r.resolutions]
        if not res_ok:
            offered = sorted({res for r in spec.rules for res in r.resolutions})
            raise InvalidRequestError(
                f"resolution {resolution} is not supported by {spec.name}; "
                f"supported: {', '.join(offered)}"
            )
        fps_ok = [r for r in res_ok if fps in r.fps]
        if not fps_ok:
            offered_fps = sorted({f for r in res_ok for f in r.fps})
            raise InvalidRequestError(
                f"fps {fps} is not supported by {spec.name} at {resolution}; "
                f"supported: {', '.join(map(str, offered_fps))}"
            )
        if duration is None:
            return
        durations = sorted({d for r in fps_ok for d in r.durations})
        if duration not in durations:
            raise InvalidRequestError(
                f"duration {duration} is not supported by {spec.name} at {resolution} and "
                f"{fps} fps; supported: {', '.join(map(str, durations))}"
            )

    def audio_limit(self, spec: ModelSpec, resolution: str) -> float:
        """audio-to-video: the longest audio ``spec`` takes at ``resolution`` (or raise)."""
        for rule in spec.audio_rules:
            if resolution in rule.resolutions:
                return rule.max_audio_seconds
        offered = sorted({res for r in spec.audio_rules for res in r.resolutions})
        raise InvalidRequestError(
            f"resolution {resolution} is not supported by {spec.name} for audio-to-video; "
            f"supported: {', '.join(offered) or 'none'}"
        )
