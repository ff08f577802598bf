"""Submit validation and the 202 answer, for all seven operations, over real HTTP."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.core.media import data_uri, mp4_bytes, png_bytes, wav_bytes
from tests.support import Server, assert_error, assert_schema

T2V = {
    "prompt": "a red fox in snow",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def video_uri() -> str:
    return data_uri("video/mp4", mp4_bytes())


def valid_bodies(video_uri: str) -> dict[str, dict[str, object]]:
    image = data_uri("image/png", png_bytes())
    return {
        "text-to-video": T2V,
        "image-to-video": {**T2V, "image_uri": image},
        "audio-to-video": {"audio_uri": data_uri("audio/wav", wav_bytes()), "prompt": "drums"},
        "retake": {"video_uri": video_uri, "start_time": 0.5, "duration": 2},
        "extend": {"video_uri": video_uri, "duration": 2},
        "video-to-video-hdr": {"video_uri": video_uri},
        "video-to-video-reframe": {
            "video_uri": video_uri,
            "model": "ltx-2-3-pro",
            "resolution": "720x720",
        },
    }


def test_every_operation_accepts_a_valid_body(server: Server, video_uri: str) -> None:
    with server.client() as c:
        for endpoint, body in valid_bodies(video_uri).items():
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, (endpoint, r.text)
            created = r.json()
            assert_schema(created, "V2JobCreatedResponse")
            assert uuid.UUID(created["id"]).version == 4
            assert ISO_MS.match(created["created_at"]), created
            assert len(r.headers["x-request-id"]) == 32
            s = c.get(f"/v2/{endpoint}/{created['id']}")
            assert s.status_code == 200
            assert_schema(s.json(), "V2JobStatusResponse")
            assert s.json()["created_at"] == created["created_at"]


INVALID = [
    ("text-to-video", {k: v for k, v in T2V.items() if k != "prompt"}, "prompt is required"),
    ("text-to-video", {**T2V, "prompt": ""}, "prompt is required"),
    ("text-to-video", {**T2V, "prompt": "x" * 5001}, "prompt must be at most 5000"),
    ("text-to-video", {k: v for k, v in T2V.items() if k != "model"}, "model is required"),
    ("text-to-video", {**T2V, "model": "ltx-9"}, "model must be one of"),
    ("text-to-video", {**T2V, "model": "ltx-2-fast"}, "deprecated"),
    ("text-to-video", {**T2V, "model": "ltx-2-pro"}, "deprecated"),
    ("text-to-video", {**T2V, "duration": 2.5}, "duration must be an integer"),
    ("text-to-video", {**T2V, "duration": "2"}, "duration must be an integer"),
    ("text-to-video", {**T2V, "duration": 7}, "duration 7 is not supported"),
    ("text-to-video", {**T2V, "model": "ltx-2-3-pro", "duration": 12}, "supported: 2, 3"),
    ("text-to-video", {**T2V, "duration": 12, "resolution": "2560x1440"}, "duration 12"),
    ("text-to-video", {**T2V, "duration": 12, "fps": 50}, "duration 12"),
    ("text-to-video", {**T2V, "fps": 30}, "fps 30 is not supported"),
    ("text-to-video", {**T2V, "resolution": "1000x1000"}, "resolution 1000x1000"),
    ("text-to-video", {**T2V, "resolution": "big"}, "resolution must look like"),
    ("text-to-video", {**T2V, "generate_audio": "yes"}, "generate_audio must be a boolean"),
    ("text-to-video", {**T2V, "camera_motion": "orbit"}, "camera_motion must be one of"),
    ("text-to-video", {**T2V, "fps": None}, "fps must not be null"),
    ("text-to-video", [T2V], "must be a JSON object"),
    ("image-to-video", T2V, "image_uri is required"),
    ("image-to-video", {**T2V, "image_uri": "file:///etc/passwd"}, "image_uri must be"),
    ("audio-to-video", {"prompt": "x"}, "audio_uri is required"),
    ("audio-to-video", {"audio_uri": "https://example.com/a.wav"}, "prompt is required"),
    (
        "audio-to-video",
        {"audio_uri": "https://e.com/a.wav", "prompt": "x", "guidance_scale": 51},
        "guidance_scale must be at most 50",
    ),
    (
        "audio-to-video",
        {"audio_uri": "https://e.com/a.wav", "prompt": "x", "resolution": "1024x768"},
        "resolution 1024x768 is not supported by ltx-2-3-pro for audio-to-video",
    ),
    (
        "audio-to-video",
        {"audio_uri": "https://e.com/a.wav", "prompt": "x", "model": "ltx-2-3-fast"},
        "does not support audio-to-video",
    ),
    ("retake", {"video_uri": "https://e.com/v.mp4", "start_time": 0}, "duration is required"),
    (
        "retake",
        {"video_uri": "https://e.com/v.mp4", "start_time": -1, "duration": 2},
        "start_time must be at least 0",
    ),
    (
        "retake",
        {"video_uri": "https://e.com/v.mp4", "start_time": 0, "duration": 1},
        "duration must be at least 2",
    ),
    (
        "retake",
        {"video_uri": "https://e.com/v.mp4", "start_time": 0, "duration": 2, "mode": "replace_all"},
        "mode must be one of",
    ),
    ("extend", {"video_uri": "https://e.com/v.mp4", "duration": 21}, "duration must be at most 20"),
    (
        "extend",
        {"video_uri": "https://e.com/v.mp4", "duration": 2, "mode": "middle"},
        "mode must be one of",
    ),
    (
        "extend",
        {"video_uri": "https://e.com/v.mp4", "duration": 2, "context": 0.5},
        "context must be at least 1",
    ),
    (
        "extend",
        {"video_uri": "https://e.com/v.mp4", "duration": 2, "model": "ltx-2-pro"},
        "deprecated",
    ),
    ("video-to-video-hdr", {}, "video_uri is required"),
    ("video-to-video-hdr", {"video_uri": 5}, "video_uri must be a string"),
    (
        "video-to-video-reframe",
        {"video_uri": "https://e.com/v.mp4", "model": "ltx-2-3-pro"},
        "resolution is required",
    ),
    (
        "video-to-video-reframe",
        {"video_uri": "https://e.com/v.mp4", "model": "ltx-2-3-fast", "resolution": "720x720"},
        "does not support",
    ),
    (
        "video-to-video-reframe",
        {"video_uri": "https://e.com/v.mp4", "model": "ltx-2-3-pro", "resolution": "640x480"},
        "resolution must be one of",
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "message"), INVALID)
def test_invalid_bodies_name_the_field_and_rule(
    server: Server, endpoint: str, body: object, message: str
) -> None:
    with server.client() as c:
        assert_error(c.post(f"/v2/{endpoint}", json=body), 400, "invalid_request_error", message)


def test_malformed_requests_get_the_envelope(server: Server) -> None:
    with server.client() as c:
        assert_error(
            c.post(
                "/v2/text-to-video",
                content=b"{not json",
                headers={"content-type": "application/json"},
            ),
            400,
            "invalid_request_error",
            "not valid JSON",
        )
        assert_error(
            c.post("/v2/text-to-video", content=b"", headers={"content-type": "application/json"}),
            400,
            "invalid_request_error",
            "empty",
        )
        assert_error(
            c.post(
                "/v2/text-to-video",
                content=b"prompt=x",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            400,
            "invalid_request_error",
            "Content-Type",
        )
        assert_error(c.get("/v3/nothing"), 404, "not_found_error")
        assert_error(c.delete("/v2/text-to-video"), 405, "invalid_request_error", "not allowed")
        big = b'{"prompt": "' + b"x" * (33 * 1024 * 1024) + b'"}'
        assert_error(
            c.post("/v2/text-to-video", content=big, headers={"content-type": "application/json"}),
            413,
            "request_too_large",
        )

        def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(40):
                yield b"x" * (1024 * 1024)

        assert_error(
            c.post(
                "/v2/text-to-video", content=chunks(), headers={"content-type": "application/json"}
            ),
            413,
            "request_too_large",
        )


def test_auth(server: Server) -> None:
    import httpx

    with httpx.Client(base_url=server.base_url) as c:
        assert_error(
            c.post("/v2/text-to-video", json=T2V),
            401,
            "authentication_error",
            "Missing authorization header",
        )
        assert_error(
            c.get(f"/v2/text-to-video/{uuid.uuid4()}"),
            401,
            "authentication_error",
            "Missing authorization header",
        )
        for header in ("Bearer nope", "Basic abc", "Bearer"):
            assert_error(
                c.post("/v2/text-to-video", json=T2V, headers={"Authorization": header}),
                401,
                "authentication_error",
                "Invalid API key",
            )
    key = server.cli("keys", "create", "--name", "temp").strip().splitlines()[-1]
    with server.client(key) as c:
        assert c.post("/v2/text-to-video", json=T2V).status_code == 202
    listing = server.cli("keys", "list")
    key_id = next(line.split("\t")[0] for line in listing.splitlines() if "\ttemp\t" in line)
    server.cli("keys", "revoke", key_id)
    with server.client(key) as c:
        assert_error(
            c.post("/v2/text-to-video", json=T2V), 401, "authentication_error", "Invalid API key"
        )
