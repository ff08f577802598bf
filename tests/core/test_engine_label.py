"""Honest engine labelling: the status object, the MP4 and the server info say which
engine made a result (docs/api.md, "Engine labelling")."""

from __future__ import annotations

import io
from collections.abc import Callable

import av
import httpx

from ltxserve.client import Client, CompletedJob
from ltxserve.config import Settings
from ltxserve.jobs.store.db import open_store
from tests.core.test_submit import T2V
from tests.support import Server, assert_error, assert_schema, wait_terminal


def _mp4_comment(url: str) -> str:
    data = httpx.get(url, timeout=60).content
    with av.open(io.BytesIO(data)) as container:
        return str(container.metadata.get("comment", ""))


def test_preview_results_say_preview_everywhere(make_server: Callable[..., Server]) -> None:
    srv = make_server(engine="preview")
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=T2V).json()
        body = wait_terminal(c, "text-to-video", job["id"])
        assert body["status"] == "completed", body
        assert_schema(body, "V2JobStatusResponse")
        assert body["engine"] == "preview"
        comment = _mp4_comment(body["result"]["video_url"])
        assert "engine=preview" in comment and "not a generative model" in comment
        info = httpx.get(f"{srv.base_url}/web/server.json").json()
        assert info["engine"] == "preview"
    with Client(api_key=srv.api_key, base_url=srv.base_url) as client:
        done = client.text_to_video.get(job["id"])
        assert isinstance(done, CompletedJob) and done.engine == "preview"
    # the engine's own account of the job is stored with its result (not on the wire)
    store = open_store(Settings(data_dir=srv.data_dir))
    try:
        stored = store.get(job["id"])
    finally:
        store.engine.dispose()
    assert stored is not None and stored.result is not None
    meta = stored.result["video_url"]["metadata"]
    assert meta["engine"] == "preview" and isinstance(meta["seed"], int), meta
    assert "metadata" not in body and "metadata" not in str(body["result"])


def test_other_states_carry_no_engine_and_minimal_is_labelled(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v2/text-to-video", json=T2V).json()
        first = c.get(f"/v2/text-to-video/{job['id']}").json()
        assert "engine" not in first or first["status"] == "completed"
        body = wait_terminal(c, "text-to-video", job["id"])
    assert body["engine"] == server.engine
    assert f"engine={server.engine}" in _mp4_comment(body["result"]["video_url"])


def test_key_check_route(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        assert_error(c.get("/web/key"), 401, "authentication_error")
        assert_error(
            c.get("/web/key", headers={"Authorization": "Bearer ltxsk_nope"}),
            401,
            "authentication_error",
            "invalid",
        )
        r = c.get("/web/key", headers={"Authorization": f"Bearer {server.api_key}"})
        assert r.status_code == 200 and len(r.json()["key_id"]) == 16
