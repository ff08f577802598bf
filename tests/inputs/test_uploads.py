"""The upload flow over real HTTP: POST /v1/upload, the signed PUT, storage URIs everywhere."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.inputs.conftest import UPLOAD_MAX, upload
from tests.inputs.media import audio_bytes, image_bytes, video_bytes
from tests.support import Server, assert_error, assert_schema, wait_terminal

T2V = {
    "prompt": "a lighthouse at dusk",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def new_upload(c: httpx.Client) -> dict[str, Any]:
    r = c.post("/v1/upload")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_upload_answer_shape(inputs_server: Server) -> None:
    with inputs_server.client() as c:
        r = c.post("/v1/upload")
    assert r.status_code == 200
    assert len(r.headers["x-request-id"]) == 32
    body = r.json()
    assert_schema(body, "UploadResponse")
    assert body["upload_url"].startswith(f"{inputs_server.base_url}/uploads/")
    assert "expires=" in body["upload_url"] and "signature=" in body["upload_url"]
    assert re.fullmatch(r"ltx://uploads/[0-9a-f]{32}", body["storage_uri"])
    assert ISO_MS.match(body["expires_at"])
    # the URL lives one hour
    expires = int(body["upload_url"].split("expires=")[1].split("&")[0])
    assert 3590 < expires - time.time() <= 3601
    assert body["required_headers"] == {"x-ltxserve-content-length-range": f"1,{UPLOAD_MAX}"}


def test_upload_needs_a_key(inputs_server: Server) -> None:
    with httpx.Client(base_url=inputs_server.base_url) as c:
        assert_error(c.post("/v1/upload"), 401, "authentication_error", "Missing authorization")
        assert_error(
            c.post("/v1/upload", headers={"Authorization": "Bearer nope"}),
            401,
            "authentication_error",
            "Invalid API key",
        )


@pytest.fixture(scope="module")
def uris(inputs_server: Server) -> Iterator[dict[str, str]]:
    with inputs_server.client() as c:
        yield {
            "image": upload(c, image_bytes("PNG"), "image/png"),
            "audio": upload(c, audio_bytes("wav"), "audio/wav"),
            "video": upload(c, video_bytes(audio=True), "video/mp4"),
        }


def test_every_media_endpoint_takes_an_upload(inputs_server: Server, uris: dict[str, str]) -> None:
    bodies = {
        "image-to-video": {**T2V, "image_uri": uris["image"], "last_frame_uri": uris["image"]},
        "audio-to-video": {
            "audio_uri": uris["audio"],
            "image_uri": uris["image"],
            "resolution": "1080x1920",
        },
        "retake": {"video_uri": uris["video"], "start_time": 0.5, "duration": 2},
        "extend": {"video_uri": uris["video"], "duration": 2, "context": 2},
        "video-to-video-hdr": {"video_uri": uris["video"]},
        "video-to-video-reframe": {
            "video_uri": uris["video"],
            "model": "ltx-2-3-pro",
            "resolution": "720x720",
        },
    }
    with inputs_server.client() as c:
        jobs = {}
        for endpoint, body in bodies.items():
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, (endpoint, r.text)
            jobs[endpoint] = r.json()["id"]
        for endpoint, job_id in jobs.items():
            done = wait_terminal(c, endpoint, job_id)
            assert done["status"] == "completed", (endpoint, done)


def test_storage_uri_belongs_to_its_key(inputs_server: Server, uris: dict[str, str]) -> None:
    other = inputs_server.cli("keys", "create", "--name", "other").strip().splitlines()[-1]
    with inputs_server.client(other) as c:
        assert_error(
            c.post("/v2/video-to-video-hdr", json={"video_uri": uris["video"]}),
            400,
            "invalid_request_error",
            "video_uri: upload",
        )
    with inputs_server.client() as c:
        for uri in ("ltx://uploads/" + "0" * 32, "ltx://uploads/nope", "ltx://other/x"):
            assert_error(
                c.post("/v2/video-to-video-hdr", json={"video_uri": uri}),
                400,
                "invalid_request_error",
                "video_uri",
            )
        pending = new_upload(c)["storage_uri"]
        assert_error(
            c.post("/v2/video-to-video-hdr", json={"video_uri": pending}),
            400,
            "invalid_request_error",
            "nothing has been uploaded",
        )


def test_put_rules(inputs_server: Server) -> None:
    with inputs_server.client() as c:
        up = new_upload(c)
    url, headers = up["upload_url"], up["required_headers"]
    data = image_bytes("PNG")
    # signature covers path and expiry
    assert_error(
        httpx.put(url.replace("signature=", "signature=0"), content=data, headers=headers),
        403,
        "authentication_error",
    )
    assert_error(
        httpx.put(url.replace("expires=", "expires=1"), content=data, headers=headers),
        403,
        "authentication_error",
    )
    assert_error(
        httpx.put(url.split("?")[0], content=data, headers=headers), 403, "authentication_error"
    )
    # the required headers are required
    assert_error(
        httpx.put(url, content=data),
        400,
        "invalid_request_error",
        "x-ltxserve-content-length-range",
    )
    assert_error(
        httpx.put(
            url,
            content=data,
            headers={**headers, "x-ltxserve-content-length-range": "1,999999999999"},
        ),
        400,
        "invalid_request_error",
        "required header",
    )
    # empty, too large by Content-Length, too large while streaming (no Content-Length)
    assert_error(
        httpx.put(url, content=b"", headers=headers), 400, "invalid_request_error", "empty"
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(UPLOAD_MAX // 65536 + 2):
            yield b"x" * 65536

    assert_error(
        httpx.put(url, content=b"x" * (UPLOAD_MAX + 1), headers=headers), 413, "request_too_large"
    )
    assert_error(httpx.put(url, content=chunks(), headers=headers), 413, "request_too_large")
    # exactly the limit is fine, once
    r = httpx.put(url, content=b"x" * UPLOAD_MAX, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["size"] == UPLOAD_MAX
    assert len(r.headers["x-request-id"]) == 32
    r = httpx.put(url, content=data, headers=headers)
    assert r.status_code == 409
    assert r.json()["error"]["type"] == "invalid_request_error"
    # other methods on the upload URL
    assert httpx.get(url).status_code == 405


def test_upload_content_is_checked_on_use(inputs_server: Server) -> None:
    """A storage URI gets the same media checks as any input: at submit, with a 400."""
    with inputs_server.client() as c:
        junk = upload(c, b"not a video at all" * 100)
        assert_error(
            c.post("/v2/video-to-video-hdr", json={"video_uri": junk}),
            400,
            "invalid_request_error",
            "video_uri must be an MP4, MOV or MKV",
        )
        png = upload(c, image_bytes("PNG"))
        assert_error(
            c.post("/v2/retake", json={"video_uri": png, "start_time": 0, "duration": 2}),
            400,
            "invalid_request_error",
            "looks like PNG",
        )


def test_upload_urls_and_uploads_expire(make_server: Any) -> None:
    """The PUT URL dies after upload_url_seconds; the upload (row and bytes) after
    upload_retention_seconds, removed by the sweeper."""
    srv: Server = make_server(
        env={
            "LTXSERVE_UPLOAD_URL_SECONDS": "1",
            "LTXSERVE_UPLOAD_RETENTION_SECONDS": "2",
            "LTXSERVE_SWEEP_INTERVAL": "0.5",
        },
        workers=0,
    )
    with srv.client() as c:
        late = new_upload(c)
        uri = upload(c, image_bytes("PNG"))
        blob = srv.data_dir / "blobs" / "uploads" / uri.rsplit("/", 1)[1]
        assert blob.is_file()
        body = {**T2V, "image_uri": uri}
        assert c.post("/v2/image-to-video", json=body).status_code == 202
        time.sleep(1.2)
        assert_error(
            httpx.put(late["upload_url"], content=b"x", headers=late["required_headers"]),
            403,
            "authentication_error",
        )
        deadline = time.monotonic() + 10
        while blob.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not blob.exists(), "the sweeper deletes expired uploads"
        assert_error(
            c.post("/v2/image-to-video", json=body),
            400,
            "invalid_request_error",
            "not found or expired",
        )


def test_put_that_hangs_up_mid_body_leaves_nothing(inputs_server: Server) -> None:
    """A client gone mid-PUT: no traceback, no partial file, and the URL still takes one PUT."""
    with inputs_server.client() as c:
        up = new_upload(c)
    parts = urlsplit(up["upload_url"])
    (name, value), *_ = up["required_headers"].items()
    with socket.create_connection(("127.0.0.1", inputs_server.port)) as sock:
        sock.sendall(
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"{name}: {value}\r\nContent-Length: 100000\r\n\r\n".encode()
            + b"x" * 1000
        )
        time.sleep(0.5)
    tmp = inputs_server.data_dir / "tmp" / "uploads"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and tmp.is_dir() and any(tmp.iterdir()):
        time.sleep(0.1)
    assert not tmp.is_dir() or not any(tmp.iterdir()), list(tmp.iterdir())
    r = httpx.put(up["upload_url"], content=b"y" * 10, headers=up["required_headers"])
    assert r.status_code == 200, r.text
    log = inputs_server.log()
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
