"""The synchronous v1 endpoints over real HTTP: the MP4 in the answer, 504, disconnects."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from ltxserve.config import Settings
from ltxserve.jobs.store.connection import make_engine
from ltxserve.jobs.store.sql import JobStore
from ltxserve.jobs.store.tables import jobs
from tests.core.test_lifecycle import runner_pids
from tests.inputs.conftest import upload
from tests.inputs.media import audio_bytes, data_uri, image_bytes, video_bytes
from tests.support import Server, assert_error, wait_terminal

T2V = {
    "prompt": "a red fox in snow",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
}
LONG = {**T2V, "resolution": "1920x1080", "duration": 10, "fps": 25}  # 250 frames at 1080p


def properties(data: bytes, path: Path) -> dict[str, Any]:
    path.write_bytes(data)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        out: dict[str, Any] = {
            "container": c.format.name,
            "codec": v.codec_context.name,
            "size": (v.codec_context.width, v.codec_context.height),
            "fps": v.average_rate,
            "frames": frames,
        }
    with av.open(str(path)) as c:
        out["audio"] = [
            (a.codec_context.name, a.codec_context.sample_rate) for a in c.streams.audio
        ]
    return out


def test_v1_matches_v2_for_every_sync_endpoint(inputs_server: Server, tmp_path: Path) -> None:
    with inputs_server.client() as c:
        video = upload(c, video_bytes(audio=True))
        bodies = {
            "text-to-video": T2V,
            "image-to-video": {
                **T2V,
                "image_uri": upload(c, image_bytes("PNG")),
                "generate_audio": False,
            },
            "audio-to-video": {
                "audio_uri": data_uri("audio/wav", audio_bytes("wav", 2.0)),
                "prompt": "rain",
            },
            "retake": {"video_uri": video, "start_time": 1, "duration": 2, "mode": "replace_video"},
            "extend": {"video_uri": video, "duration": 2},
        }
        for endpoint, body in bodies.items():
            r1 = c.post(f"/v1/{endpoint}", json=body, timeout=120)
            assert r1.status_code == 200, (endpoint, r1.text)
            assert r1.headers["content-type"] == "video/mp4"
            assert int(r1.headers["content-length"]) == len(r1.content) > 1000
            assert len(r1.headers["x-request-id"]) == 32
            job = c.post(f"/v2/{endpoint}", json=body).json()
            done = wait_terminal(c, endpoint, job["id"])
            assert done["status"] == "completed", done
            v2 = httpx.get(done["result"]["video_url"]).content
            p1 = properties(r1.content, tmp_path / f"v1-{endpoint}.mp4")
            p2 = properties(v2, tmp_path / f"v2-{endpoint}.mp4")
            assert p1 == p2, endpoint
            assert p1["frames"] > 0


def test_v1_errors_use_the_envelope(server: Server) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        assert_error(c.post("/v1/text-to-video", json=T2V), 401, "authentication_error")
    with server.client() as c:
        assert_error(
            c.post("/v1/text-to-video", json={**T2V, "duration": 7}),
            400,
            "invalid_request_error",
            "duration 7 is not supported",
        )
        assert_error(
            c.post("/v1/image-to-video", json={**T2V, "image_uri": data_uri("image/png", b"junk")}),
            400,
            "invalid_request_error",
            "image_uri must be a PNG",
        )
        assert_error(
            c.post("/v1/extend", content=b"{", headers={"content-type": "application/json"}),
            400,
            "invalid_request_error",
            "not valid JSON",
        )
        # found during processing (the URL is fetched by the worker): the job's error
        assert_error(
            c.post(
                "/v1/image-to-video",
                json={**T2V, "image_uri": "https://localhost:9/x.png"},
                timeout=60,
            ),
            400,
            "invalid_request_error",
            "image_uri: host localhost resolves to a loopback address",
        )
        # hdr and reframe have no v1
        assert_error(c.post("/v1/video-to-video-hdr", json={}), 404, "not_found_error")


def _jobs(srv: Server) -> list[dict[str, Any]]:
    store = JobStore(make_engine(Settings(data_dir=srv.data_dir).db_url))
    try:
        with store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(jobs.select()).all()]
    finally:
        store.engine.dispose()


def _wait(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def short_sync(make_server: Callable[..., Server]) -> Server:
    return make_server(env={"LTXSERVE_SYNC_TIMEOUT_SECONDS": "2"})


def test_timeout_is_504_and_stops_the_job(short_sync: Server) -> None:
    srv = short_sync
    (worker,) = srv.worker_pids()
    # The server answers before its worker has started the runner: wait for it, or the
    # sample below can miss the runner (or the resource tracker spawned with it).
    _wait(lambda: "ready with engine" in srv.log(), 30, "the worker's runner")
    runner = runner_pids(worker)  # the runner (and multiprocessing's resource tracker)
    assert runner
    with srv.client() as c:
        t0 = time.monotonic()
        r = c.post("/v1/text-to-video", json=LONG, timeout=60)
        assert 1.9 < time.monotonic() - t0 < 10
        assert_error(r, 504, "api_error", "did not finish within 2 s")
        job = _wait(
            lambda: [j for j in _jobs(srv) if j["status"] == "failed"], 5, "the job to be failed"
        )[0]
        assert "did not finish within 2 s" in job["error_message"]
        # the worker lets go of it at its next heartbeat and is free for the next job
        nxt = c.post("/v2/text-to-video", json=T2V).json()
        assert wait_terminal(c, "text-to-video", nxt["id"], timeout=30)["status"] == "completed"
    log = srv.log()
    assert "abandoning" in log
    # the runner dropped the job and stayed up (a model engine keeps its weights loaded)
    assert "stopped in the runner" in log and "restarting the runner" not in log
    assert runner_pids(worker) == runner


def test_client_disconnect_fails_the_job(short_sync: Server) -> None:
    srv = short_sync
    with srv.client() as c, pytest.raises(httpx.ReadTimeout):
        c.post("/v1/text-to-video", json=LONG, timeout=httpx.Timeout(30, read=0.8))
    job = _wait(
        lambda: [j for j in _jobs(srv) if j["status"] == "failed"], 5, "the job to be failed"
    )[0]
    assert "client disconnected" in job["error_message"]
    assert job["completed_at"] - job["created_at"] < 2000, "failed at once, not at the timeout"
