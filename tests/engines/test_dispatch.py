"""engines.dispatch: a stored request becomes the typed request every engine reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltxserve.config import Settings
from ltxserve.engines.dispatch import run_job
from ltxserve.engines.minimal import MinimalEngine
from ltxserve.engines.preview import PreviewEngine
from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.jobs.contract.requests import Retake, parse_request, validate

BODY = {
    "prompt": "a lighthouse at dusk",
    "model": "ltx-2-3-fast",
    "duration": 6,
    "resolution": "1920x1080",
    "fps": 25,
}


def test_the_stored_json_reads_back_as_the_validated_request() -> None:
    """What validate stores (through JSON, as the database holds it) is what the
    engines get back: every field and default, none of the server's notes."""
    stored = json.loads(json.dumps(validate("text-to-video", BODY, Catalog.load())))
    stored["_simulate"] = {"processing": 1}
    typed = parse_request("text-to-video", stored)
    assert typed.model_dump() == {k: v for k, v in stored.items() if not k.startswith("_")}
    assert typed.size == (1920, 1080)  # type: ignore[attr-defined]


def test_a_default_is_the_models_own() -> None:
    """retake's mode, left out, is the contract's default wherever it is read."""
    stored = validate(
        "retake", {"video_uri": "ltx://v", "start_time": 0, "duration": 2}, Catalog.load()
    )
    typed = parse_request("retake", {k: v for k, v in stored.items() if k != "mode"})
    assert isinstance(typed, Retake)
    assert typed.mode == stored["mode"] == "replace_audio_and_video"
    assert typed.replaces_audio and typed.replaces_video


def test_the_servers_notes_do_not_change_what_is_rendered(tmp_path: Path) -> None:
    """A simulated job renders exactly what the same request renders without: the
    "_" notes never reach the engine (the preview's seed hashes the request)."""
    request = {**BODY, "duration": 1, "resolution": "64x36", "generate_audio": False}
    engine = PreviewEngine(Settings())
    plain = run_job(engine, "a", "text-to-video", request, {}, tmp_path / "a", lambda _f: None)
    noted = {**request, "_simulate": {"processing": 1}, "_duration_auto": True}
    other = run_job(engine, "b", "text-to-video", noted, {}, tmp_path / "b", lambda _f: None)
    assert plain.metadata["seed"] == other.metadata["seed"]


def test_an_unknown_endpoint_is_a_request_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="unknown endpoint"):
        run_job(MinimalEngine(Settings()), "x", "to-video", BODY, {}, tmp_path, lambda _f: None)
