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


@dataclass(frozen=True)
class Rule:
    resolutions: frozenset[str]
    fps: frozenset[int]
    durations: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    status: str  # current | deprecated | removed
    tier: str
    endpoints: frozenset[str]
    last_frame: bool
    auto_duration: bool
    rules: tuple[Rule, ...]
    message: str


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
                rules=rules,
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
            able = [
                m.name
                for m in self.models.values()
                if endpoint in m.endpoints and m.status != "removed"
            ]
            raise InvalidRequestError(
                f"model {name} does not support {endpoint}; "
                f"use {' or '.join(able) or 'another model'}"
            )
        return spec

    def check_combination(
        self, spec: ModelSpec, resolution: str, fps: int, duration: int | None
    ) -> None:
        """Reject (never downgrade) a resolution x fps x duration the model does not offer."""
        if duration is None:
            if not spec.auto_duration:
                raise InvalidRequestError(f"duration is required for model {spec.name}")
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
