"""Status polling, result files and their signatures, over real HTTP."""

from __future__ import annotations

import uuid

import av
import httpx

from tests.core.test_submit import T2V
from tests.support import Server, assert_error, assert_schema, wait_terminal


def test_completed_job_has_a_signed_playable_result(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v2/text-to-video", json={**T2V, "fps": 25}).json()
        body = wait_terminal(c, "text-to-video", job["id"])
    assert body["status"] == "completed", body
    # the documented fields, plus the additive "engine", "duration", "progress" and
    # "expires_at" (docs/api.md)
    assert set(body) == {
        "status",
        "id",
        "created_at",
        "completed_at",
        "result",
        "engine",
        "duration",
        "progress",
        "expires_at",
    }
    assert body["progress"] == 1 and body["expires_at"] > body["completed_at"]
    assert body["duration"] == 2
    assert body["completed_at"] >= body["created_at"]
    url = body["result"]["video_url"]
    assert url.startswith(server.base_url + "/")
    r = httpx.get(url)  # no API key: the signature is the authority
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/mp4"
    assert int(r.headers["content-length"]) == len(r.content)
    path = server.data_dir / "clip.mp4"
    path.write_bytes(r.content)
    with av.open(str(path)) as cont:
        v = cont.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        assert v.average_rate == 25
        assert sum(1 for _ in cont.decode(video=0)) == 50
        assert cont.streams.audio[0].codec_context.name == "aac"
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == r.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(r.content)}"
    assert len(part.headers["x-request-id"]) == 32
    # tampering with path, expiry or signature gets the envelope, never the file
    assert_error(httpx.get(url.replace("signature=", "signature=0")), 403, "authentication_error")
    assert_error(httpx.get(url.replace("expires=", "expires=1")), 403, "authentication_error")
    assert_error(httpx.get(url.replace("video.mp4", "other.mp4")), 403, "authentication_error")
    assert_error(httpx.get(url.split("?")[0]), 403, "authentication_error")


def test_generate_audio_false_has_no_audio_track(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v2/text-to-video", json={**T2V, "generate_audio": False}).json()
        body = wait_terminal(c, "text-to-video", job["id"])
    data = httpx.get(body["result"]["video_url"]).content
    path = server.data_dir / "silent.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as cont:
        assert not cont.streams.audio
        assert cont.streams.video[0].frames == 48


def test_failed_job_shape(server: Server) -> None:
    with server.client() as c:
        job = c.post(
            "/v2/retake",
            json={"video_uri": "https://host.invalid/v.mp4", "start_time": 0, "duration": 2},
        ).json()
        body = wait_terminal(c, "retake", job["id"])
    assert body["status"] == "failed"
    # failed before any progress: no "progress"; "expires_at" is an additive field
    assert set(body) == {"status", "id", "created_at", "completed_at", "error", "expires_at"}
    assert body["error"]["type"] == "invalid_request_error"
    assert "video_uri" in body["error"]["message"]


def test_not_found_cases(server: Server) -> None:
    other = server.cli("keys", "create").strip().splitlines()[-1]
    with server.client() as c:
        job = c.post("/v2/text-to-video", json=T2V).json()
        assert c.get(f"/v2/text-to-video/{job['id']}").status_code == 200
        assert_error(c.get(f"/v2/text-to-video/{uuid.uuid4()}"), 404, "not_found_error")
        assert_error(c.get("/v2/text-to-video/not-a-uuid"), 404, "not_found_error")
        assert_error(c.get(f"/v2/image-to-video/{job['id']}"), 404, "not_found_error")
        assert_error(c.get(f"/v2/no-such-endpoint/{job['id']}"), 404, "not_found_error")
    with server.client(other) as c:
        assert_error(c.get(f"/v2/text-to-video/{job['id']}"), 404, "not_found_error")


def test_processing_is_observed_with_progress(server: Server) -> None:
    with server.client() as c:
        job = c.post(
            "/v2/text-to-video", json={**T2V, "resolution": "1920x1080", "duration": 10, "fps": 25}
        ).json()
        seen: set[str] = set()
        progress: list[float] = []
        import time

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = c.get(f"/v2/text-to-video/{job['id']}").json()
            assert_schema(body, "V2JobStatusResponse")
            seen.add(body["status"])
            if "progress" in body:
                progress.append(body["progress"])
            if body["status"] in ("completed", "failed"):
                break
            time.sleep(0.1)
    assert {"processing", "completed"} <= seen
    assert progress == sorted(progress) and all(0 <= p <= 1 for p in progress)
