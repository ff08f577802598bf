"""HTTPS inputs end to end: fetched by the worker from a loopback media server.

``inputs_server`` allowlists the media server's ``localhost:<port>`` and trusts its
CA; the shared default ``server`` must refuse the same URLs (loopback).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.inputs.media import audio_bytes, image_bytes, video_bytes
from tests.inputs.mediaserver import MediaServer
from tests.support import Server, wait_terminal

I2V = {"prompt": "a fox", "model": "ltx-2-3-fast", "duration": 2, "resolution": "1280x720"}


@pytest.fixture(scope="module", autouse=True)
def files(media: MediaServer) -> None:
    media.add("/in/image.png", image_bytes("PNG"), "image/png")
    media.add("/in/image.jpg", image_bytes("JPEG"), "image/jpeg")
    media.add("/in/audio.wav", audio_bytes("wav"), "audio/wav")
    media.add("/in/video.mp4", video_bytes(audio=True), "video/mp4")
    media.add("/in/short.mp4", video_bytes(frames=40), "video/mp4")
    media.add("/in/text.png", b"<html>not an image</html>" * 10, "image/png")
    media.add("/in/huge.png", b"\x89PNG\r\n\x1a\n" + bytes(15 * 1024 * 1024), "image/png")
    media.redirect("/in/moved.png", media.url("/in/image.png"))


def run(srv: Server, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    with srv.client() as c:
        r = c.post(f"/v2/{endpoint}", json=body)
        assert r.status_code == 202, r.text
        return wait_terminal(c, endpoint, r.json()["id"])


def test_https_inputs_are_fetched(inputs_server: Server, media: MediaServer) -> None:
    jobs = {
        "image-to-video": {
            **I2V,
            "image_uri": media.url("/in/image.png"),
            "last_frame_uri": media.url("/in/image.jpg"),
        },
        "audio-to-video": {"audio_uri": media.url("/in/audio.wav"), "prompt": "rain"},
        "retake": {"video_uri": media.url("/in/video.mp4"), "start_time": 0, "duration": 2},
    }
    with inputs_server.client() as c:
        ids = {}
        for endpoint, body in jobs.items():
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, r.text
            ids[endpoint] = r.json()["id"]
        for endpoint, job_id in ids.items():
            done = wait_terminal(c, endpoint, job_id)
            assert done["status"] == "completed", done
    fetched = {path for path, _host in media.hits}
    assert {"/in/image.png", "/in/image.jpg", "/in/audio.wav", "/in/video.mp4"} <= fetched


@pytest.mark.parametrize(
    ("endpoint", "body", "message"),
    [
        (
            "image-to-video",
            {**I2V, "image_uri": "/in/text.png"},
            "image_uri must be a PNG, JPEG or WEBP image",
        ),
        (
            "retake",
            {"video_uri": "/in/short.mp4", "start_time": 0, "duration": 2},
            "video_uri: the video must have at least 73 frames",
        ),
        (
            "image-to-video",
            {**I2V, "image_uri": "/in/moved.png"},
            "image_uri: the URL answered a redirect (HTTP 302)",
        ),
        (
            "image-to-video",
            {**I2V, "image_uri": "/in/missing.png"},
            "image_uri: the URL answered HTTP 404",
        ),
        (
            "image-to-video",
            {**I2V, "image_uri": "/in/huge.png"},
            "image_uri: the file is larger than the 15 MB limit",
        ),
    ],
    ids=["not-media", "rule", "redirect", "404", "too-large"],
)
def test_bad_fetched_input_fails_the_job(
    inputs_server: Server, media: MediaServer, endpoint: str, body: dict[str, Any], message: str
) -> None:
    field = next(k for k in body if k.endswith("_uri"))
    body = {**body, field: media.url(body[field])}
    done = run(inputs_server, endpoint, body)
    assert done["status"] == "failed", done
    assert done["error"]["type"] == "invalid_request_error"
    assert message in done["error"]["message"], done["error"]


def test_default_configuration_refuses_loopback(
    server: Server, inputs_server: Server, media: MediaServer
) -> None:
    before = len(media.hits)
    done = run(server, "image-to-video", {**I2V, "image_uri": media.url("/in/image.png")})
    assert done["status"] == "failed"
    assert done["error"]["type"] == "invalid_request_error"
    msg = done["error"]["message"]
    assert msg.startswith("image_uri: host localhost resolves to a loopback address"), msg
    # the allowlist is per port: another localhost port stays closed on the test server too
    done = run(
        inputs_server,
        "image-to-video",
        {**I2V, "image_uri": f"https://localhost:{server.port}/x.png"},
    )
    assert "loopback" in done["error"]["message"], done
    assert len(media.hits) == before, "a refused URL is never connected to"
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
