"""The SDK's pure decisions, without a server: parsing, classification, retry math, bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from ltxserve.client import (
    APIError,
    Client,
    CompletedJob,
    ConcurrencyLimitError,
    ConfigurationError,
    ContentFilteredError,
    FailedJob,
    InternalServerError,
    NotFoundError,
    ProcessingJob,
    RateLimitError,
    TextToVideoRequest,
)
from ltxserve.client._base import local_file, parse_retry_after
from ltxserve.client._exceptions import error_class, error_from_response
from ltxserve.client.types import ImageToVideoRequest, parse_status


def make_client(**kw: object) -> Client:
    return Client(api_key="k", base_url="http://127.0.0.1:9", **kw)  # type: ignore[arg-type]


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after(future) or 0) <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_local_file_tells_paths_from_uris(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    assert local_file(f) == f
    assert local_file(str(f)) == f
    for uri in ("https://example.com/a.png", "data:image/png;base64,AA==", "ltx://uploads/x"):
        assert local_file(uri) is None
    with pytest.raises(FileNotFoundError):
        local_file("no-such-file.png")
    with pytest.raises(FileNotFoundError):
        local_file(tmp_path / "missing.mp4")


def test_error_class_prefers_the_wire_type_then_the_status() -> None:
    assert error_class("concurrency_limit_error", 429) is ConcurrencyLimitError
    assert error_class("content_filtered_error", None) is ContentFilteredError
    assert error_class(None, 429) is RateLimitError
    assert error_class("something_new", 500) is InternalServerError
    assert error_class("something_new", 418) is APIError
    assert issubclass(ConcurrencyLimitError, RateLimitError)


def test_error_from_response_reads_the_envelope_and_survives_html() -> None:
    req = httpx.Request("GET", "http://x/v2/retake/1")
    resp = httpx.Response(
        404,
        request=req,
        headers={"x-request-id": "ab" * 16},
        json={"type": "error", "error": {"type": "not_found_error", "message": "Job 1 not found"}},
    )
    err = error_from_response(resp, None)
    assert isinstance(err, NotFoundError)
    assert (err.status_code, err.type, err.message) == (404, "not_found_error", "Job 1 not found")
    assert err.request_id == "ab" * 16
    html = httpx.Response(503, request=req, text="<html>bad gateway</html>")
    err = error_from_response(html, 3.0)
    assert type(err).__name__ == "ServiceUnavailableError" and err.retry_after == 3.0
    assert "bad gateway" in err.message


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    c = make_client(initial_retry_delay=1.0, max_retry_delay=4.0)
    for attempt, nominal in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        for _ in range(50):
            assert 0.75 * nominal <= c._backoff(attempt) <= nominal


def test_retry_delay_follows_the_documented_table() -> None:
    c = make_client(max_retries=2, max_retry_after=60)
    req = httpx.Request("POST", "http://x")

    def resp(status: int, retry_after: str | None = None) -> httpx.Response:
        headers = {"Retry-After": retry_after} if retry_after else {}
        return httpx.Response(status, request=req, headers=headers)

    assert c._retry_delay(resp(429, "7"), 0) == 7.0
    assert c._retry_delay(resp(503), 0) is not None
    assert c._retry_delay(resp(500), 1) is not None
    assert c._retry_delay(resp(503), 2) is None  # retries spent
    assert c._retry_delay(resp(429, "3600"), 0) is None  # too long to sleep inside a call
    for status in (400, 401, 402, 404, 413, 422, 504):
        assert c._retry_delay(resp(status, "1"), 0) is None, status


def test_bodies_send_only_what_was_set_but_keep_a_null_duration() -> None:
    req = TextToVideoRequest(
        prompt="p", model="ltx-2-5-fast", duration=None, resolution="1920x1080"
    )
    assert req.to_body() == {
        "prompt": "p",
        "model": "ltx-2-5-fast",
        "duration": None,
        "resolution": "1920x1080",
    }
    assert req.fps == 24  # documented default, known locally, not sent
    i2v = ImageToVideoRequest(
        prompt="p",
        model="m",
        duration=2,
        resolution="1280x720",
        image_uri=Path("a.png"),
        camera_motion=None,
    )
    assert i2v.uri_fields() == {"image_uri": Path("a.png")}
    assert "camera_motion" not in i2v.to_body()
    with pytest.raises(ValidationError):
        TextToVideoRequest(prompt="p", model="m", duration=2, resolution="r", fsp=24)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        TextToVideoRequest(
            prompt="p", model="m", duration=2, resolution="r", camera_motion="barrel_roll"
        )  # type: ignore[arg-type]


def test_status_objects_keep_extras_clamp_progress_and_raise_by_type() -> None:
    raw = {
        "status": "processing",
        "id": "j",
        "created_at": "2026-01-15T10:00:00.000Z",
        "progress": 1.2,
        "eta": 3,
    }
    job = parse_status(raw)
    assert isinstance(job, ProcessingJob) and job.progress == 1.0
    assert job.to_dict() == raw  # the server's JSON, timestamps untouched
    assert job.raise_for_status() is job
    done = parse_status(
        {
            "status": "completed",
            "id": "j",
            "created_at": raw["created_at"],
            "completed_at": raw["created_at"],
            "result": {"exr_frames_url": "https://x/f.zip"},
        }
    )
    assert isinstance(done, CompletedJob) and done.output_url() == "https://x/f.zip"
    failed = parse_status(
        {
            "status": "failed",
            "id": "j",
            "created_at": raw["created_at"],
            "completed_at": raw["created_at"],
            "error": {"type": "content_filtered_error", "message": "no"},
        }
    )
    assert isinstance(failed, FailedJob)
    with pytest.raises(ContentFilteredError) as info:
        failed.raise_for_status()
    assert info.value.job is failed and info.value.status_code is None


def test_configuration_comes_from_arguments_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LTXV_API_KEY", raising=False)
    monkeypatch.delenv("LTX_BASE_URL", raising=False)
    monkeypatch.delenv("LTX_POLL_INTERVAL", raising=False)
    with pytest.raises(ConfigurationError):
        Client()
    monkeypatch.setenv("LTXV_API_KEY", "from-env")
    c = Client()
    assert (c.api_key, c.base_url, c.poll_interval) == ("from-env", "https://api.ltx.video", 5.0)
    monkeypatch.setenv("LTX_BASE_URL", "http://127.0.0.1:1234/")
    monkeypatch.setenv("LTX_POLL_INTERVAL", "0.5")
    c = Client(api_key="arg")
    assert (c.api_key, c.base_url, c.poll_interval) == ("arg", "http://127.0.0.1:1234", 0.5)


def test_the_key_only_goes_to_the_api_origin() -> None:
    c = make_client()
    assert "Authorization" in c._headers("http://127.0.0.1:9/files/x", None, auth=True)
    assert "Authorization" not in c._headers("https://storage.example/x", None, auth=True)
    assert "Authorization" not in c._headers("http://127.0.0.1:9/up", None, auth=False)


def test_the_sdk_knows_the_same_v1_endpoints_as_the_server() -> None:
    """The SDK does not import the server, so its list is a copy: held here to the original."""
    from ltxserve.api.v1 import SYNC_ENDPOINTS as server_side
    from ltxserve.client._base import SYNC_ENDPOINTS

    assert SYNC_ENDPOINTS == set(server_side)
