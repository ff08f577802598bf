"""JSON numbers as the contract defines them, generated from openapi.json.

JSON Schema's ``integer`` is any number with a zero fractional part, so for every
integer property of every request schema, ``N.0`` and ``N`` written with an
exponent must get the same answer as ``N`` (for a valid and an invalid N alike);
``N.5``, booleans and numeric strings stay refused, naming the field. Every
``number`` property must be finite and bounded: absurd values are a 400 that
names the field at submit, never a job that fails later (issue #17 item 6).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.core.media import data_uri, png_bytes
from tests.support import Server, assert_error, openapi

IMAGE = data_uri("image/png", png_bytes())
VIDEO = "https://example.com/v.mp4"
AUDIO = "https://example.com/a.wav"
# One valid body per request schema; the integer-valued fields hold valid values.
VALID: dict[str, dict[str, Any]] = {
    "TextToVideoRequest": {
        "prompt": "a cat",
        "model": "ltx-2-3-fast",
        "duration": 10,
        "resolution": "1920x1080",
        "fps": 24,
    },
    "ImageToVideoRequest": {
        "prompt": "a cat",
        "model": "ltx-2-3-pro",
        "duration": 6,
        "resolution": "1920x1080",
        "fps": 25,
        "image_uri": IMAGE,
    },
    "AudioToVideoRequest": {"audio_uri": AUDIO, "prompt": "music", "guidance_scale": 5},
    "EditVideoRequest": {"video_uri": VIDEO, "start_time": 1, "duration": 2},
    "ExtendVideoRequest": {"video_uri": VIDEO, "duration": 2, "context": 2},
    "VideoToVideoHdrRequest": {"video_uri": VIDEO},
    "VideoToVideoReframeRequest": {
        "video_uri": VIDEO,
        "model": "ltx-2-3-pro",
        "resolution": "1920x1080",
    },
}
# An integer the field's type accepts but the rules refuse, to compare 400 answers too.
INVALID_INT = {"duration": 7, "fps": 30}


def operations() -> dict[str, list[str]]:
    """Request schema name -> the POST paths that take it (v1 and v2)."""
    out: dict[str, list[str]] = {}
    for path, item in openapi()["paths"].items():
        body = item.get("post", {}).get("requestBody")
        if body:
            ref = body["content"]["application/json"]["schema"]["$ref"]
            out.setdefault(ref.rsplit("/", 1)[1], []).append(path)
    return out


def properties(schema: str, type_: str) -> list[str]:
    props = openapi()["components"]["schemas"][schema]["properties"]
    return [name for name, p in props.items() if p.get("type") == type_]


def test_every_request_schema_has_a_valid_body() -> None:
    assert set(operations()) == set(VALID)
    assert {s: properties(s, "integer") for s in VALID if properties(s, "integer")} == {
        "TextToVideoRequest": ["duration", "fps"],
        "ImageToVideoRequest": ["duration", "fps"],
    }


def exponent(n: int) -> str:
    """``n`` written with an exponent, as float-minded clients may: 24 -> 2.4e1, 7 -> 7e0."""
    digits = str(n)
    return f"{digits[0]}.{digits[1:]}e{len(digits) - 1}" if len(digits) > 1 else f"{n}e0"


def post_raw(c: httpx.Client, path: str, body: dict[str, Any], field: str, text: str) -> Any:
    """POST ``body`` with ``field`` written exactly as ``text`` in the JSON."""
    raw = json.dumps({**body, field: "@@"}).replace('"@@"', text)
    return c.post(path, content=raw, headers={"Content-Type": "application/json"})


def answer(r: httpx.Response) -> tuple[int, str]:
    body = r.json()
    return r.status_code, body["error"]["message"] if r.status_code >= 400 else "accepted"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = Server(tmp_path_factory.mktemp("api"), workers=0).start()
    yield srv
    srv.stop()


CASES = [(schema, field) for schema in VALID for field in properties(schema, "integer")]


@pytest.mark.parametrize("schema,field", CASES)
def test_integral_floats_are_integers(api: Server, schema: str, field: str) -> None:
    v2 = next(p for p in operations()[schema] if p.startswith("/v2/"))
    body = VALID[schema]
    with api.client() as c:
        for n in (body[field], INVALID_INT[field]):
            want = answer(post_raw(c, v2, body, field, str(n)))
            assert want[0] == (202 if n == body[field] else 400), want
            for text in (f"{n}.0", exponent(n), f"{n}.000", f"{n}E0"):
                assert answer(post_raw(c, v2, body, field, text)) == want, (field, text)


@pytest.mark.parametrize("schema,field", CASES)
def test_non_integers_are_refused_naming_the_field(api: Server, schema: str, field: str) -> None:
    body = VALID[schema]
    with api.client() as c:
        for path in operations()[schema]:  # v1 answers a 400 before any generation
            for text, rule in (
                (f"{body[field]}.5", "must be an integer"),
                ("true", "must be an integer"),
                ("false", "must be an integer"),
                (f'"{body[field]}"', "must be an integer"),
                (f'"{body[field]}.0"', "must be an integer"),
                ("1e308", "must be at most"),
                ("-1e308", "must be at least"),
            ):
                assert_error(
                    post_raw(c, path, body, field, text),
                    400,
                    "invalid_request_error",
                    f"{field} {rule}",
                )


NUMBER_CASES = [(schema, field) for schema in VALID for field in properties(schema, "number")]


@pytest.mark.parametrize("schema,field", NUMBER_CASES)
def test_numbers_are_finite_and_bounded_at_submit(api: Server, schema: str, field: str) -> None:
    body = VALID[schema]
    with api.client() as c:
        for path in operations()[schema]:
            for text, rule in (
                ("1e308", "must be at most"),
                ("-1e308", "must be at least"),
                ("true", "must be a number"),
                ('"2"', "must be a number"),
            ):
                assert_error(
                    post_raw(c, path, body, field, text),
                    400,
                    "invalid_request_error",
                    f"{field} {rule}",
                )
            # non-finite literals and overflowing numbers are not JSON: refused as a whole
            for text in ("NaN", "Infinity", "-Infinity", "1e400"):
                assert_error(
                    post_raw(c, path, body, field, text),
                    400,
                    "invalid_request_error",
                    "not valid JSON",
                )


def test_the_reported_retake_is_refused_at_submit(api: Server) -> None:
    """The probe's case: 202 then api_error (OverflowError) before; now a 400 at submit."""
    with api.client() as c:
        r = c.post("/v2/retake", json={"video_uri": VIDEO, "start_time": 1e308, "duration": 1e308})
    assert_error(r, 400, "invalid_request_error", "start_time must be at most 3600")
