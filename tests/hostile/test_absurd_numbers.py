"""Item 6 of issue 17 (engine side, and the submit check): absurd numbers. Proves: no 5xx,
and never "the server's fault".

A retake with ``start_time: 1e308, duration: 1e308`` was accepted (202) and then
failed as api_error "generation failed unexpectedly" (an OverflowError in the
engine). The submit-time rule (every numeric field finite and bounded; 400 naming
the field) lives in jobs/requests.py. Whatever slips past it, an engine's
arithmetic overflow is recorded as the request's fault (invalid_request_error).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from ltxserve.config import Settings
from ltxserve.jobs.store.db import open_store
from ltxserve.keys import KeyChecker
from tests.core.media import mp4_bytes
from tests.support import Server, assert_error, wait_terminal

ABSURD = {"start_time": 1e308, "duration": 1e308}


def _video_uri() -> str:
    return (
        "data:video/mp4;base64,"
        + base64.b64encode(mp4_bytes(320, 180, 24, 80, audio=False)).decode()
    )


def test_absurd_retake_numbers_are_a_400_naming_the_field(server: Server) -> None:
    """No 5xx and no 202: 1e308 seconds is refused at submit, naming the field."""
    with server.client() as c:
        r = c.post("/v2/retake", json={"video_uri": _video_uri(), **ABSURD})
    assert_error(r, 400, "invalid_request_error")
    message = r.json()["error"]["message"]
    assert "start_time" in message or "duration" in message, message


def test_engine_overflow_is_the_requests_fault(make_server: Callable[..., Server]) -> None:
    """A job with absurd numbers that reached a worker fails as invalid_request_error."""
    srv = make_server(engine="preview")
    store = open_store(Settings(data_dir=srv.data_dir))
    try:
        key_id = KeyChecker(store, 0).check(f"Bearer {srv.api_key}")
        # straight into the store, as a job validated by an older, laxer server would be
        job = store.create_job(
            key_id,
            "retake",
            {
                "video_uri": _video_uri(),
                "prompt": None,
                "mode": "replace_audio_and_video",
                "model": "ltx-2-3-pro",
                "resolution": None,
                **ABSURD,
            },
        )
    finally:
        store.engine.dispose()
    with srv.client() as c:
        body = wait_terminal(c, "retake", job.id)
    assert body["status"] == "failed", body
    assert body["error"]["type"] == "invalid_request_error", body
