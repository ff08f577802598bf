"""No shared filesystem: one API process and two workers, each with a data dir of its own,
on one PostgreSQL and one S3 bucket (issue #13, item 2).

Every endpoint's job goes through them, with inputs of every form that lives in the
blob store: uploads (``POST /v1/upload``, then a PUT straight to the bucket's presigned
URL) and a data URI large enough to be kept as a blob of its job. Every result URL is
fetched (a presigned GET of the bucket, no credentials) and decoded. A code path that
reached for a file another process wrote (a blob directory, a symlink, a hard-coded
local store) finds nothing here and fails its job or its fetch.
"""

from __future__ import annotations

import base64
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.inputs.media import audio_bytes, image_bytes, video_bytes
from tests.storage.conftest import S3_URL, keys_under, s3_env
from tests.store.conftest import pg_database
from tests.support import Server, wait_terminal

T2V = {"prompt": "a harbour", "model": "ltx-2-3-fast", "duration": 2, "resolution": "1280x720"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database()


def upload_to_bucket(c: httpx.Client, data: bytes, content_type: str) -> str:
    """The documented flow; the PUT goes to the bucket itself, never to the API."""
    r = c.post("/v1/upload")
    assert r.status_code == 200, r.text
    body = r.json()
    assert urlsplit(body["upload_url"]).netloc == urlsplit(S3_URL).netloc, body
    assert "X-Amz-Signature=" in body["upload_url"]
    put = httpx.put(
        body["upload_url"],
        content=data,
        headers={**body["required_headers"], "Content-Type": content_type},
    )
    assert put.status_code == 200, put.text
    return str(body["storage_uri"])


def noise_png(size: int = 160) -> bytes:
    """A PNG that does not compress: its data URI is kept as a blob of the job."""
    pixels = np.random.default_rng(1).integers(0, 255, (size // 16 * 9, size, 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def check_media(data: bytes, content_type: str, label: str) -> None:
    """Decode what a result URL served: every video frame with PyAV, every zip entry."""
    if content_type == "application/zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            assert names and all(n.endswith(".exr") for n in names), names
            assert zf.testzip() is None
        return
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0, label


def test_api_and_two_workers_share_no_filesystem(
    make_server: Callable[..., Server], pg_url: str, bucket: str, tmp_path: Path
) -> None:
    env = {
        "LTXSERVE_DATABASE_URL": pg_url,
        "LTXSERVE_SECRET": "no-shared-fs-secret",
        **s3_env(bucket, "deploy"),
    }
    srv = make_server(env=env, workers=0, data_dir=tmp_path / "api")
    workers = []
    try:
        for n in range(2):
            own = tmp_path / f"worker{n}"
            own.mkdir()
            workers.append(srv.spawn_worker(own))
        deadline = time.monotonic() + 90
        while not all("ready with engine" in log.read_text() for _, log in workers):
            assert all(p.poll() is None for p, _ in workers), [lg.read_text() for _, lg in workers]
            assert time.monotonic() < deadline, [log.read_text() for _, log in workers]
            time.sleep(0.2)
        # each job lasts 1 s at least (client-testing mode), so both workers get some
        key = srv.cli("keys", "create", "--name", "slow", "--simulate", "processing=1")
        with srv.client(key.strip().splitlines()[-1]) as c:
            image = upload_to_bucket(c, image_bytes("PNG"), "image/png")
            audio = upload_to_bucket(c, audio_bytes("wav"), "audio/wav")
            video = upload_to_bucket(c, video_bytes(audio=True), "video/mp4")
            big = "data:image/png;base64," + base64.b64encode(noise_png()).decode()
            assert len(big) > 16 * 1024  # payloads.INLINE_MAX: stored as a blob
            bodies: dict[str, dict[str, Any]] = {
                "text-to-video": T2V,
                "image-to-video": {**T2V, "image_uri": big, "last_frame_uri": image},
                "audio-to-video": {
                    "audio_uri": audio,
                    "image_uri": image,
                    "resolution": "1080x1920",
                },
                "retake": {"video_uri": video, "start_time": 0.5, "duration": 2},
                "extend": {"video_uri": video, "duration": 2, "context": 2},
                "video-to-video-hdr": {"video_uri": video},
                "video-to-video-reframe": {
                    "video_uri": video,
                    "model": "ltx-2-3-pro",
                    "resolution": "720x720",
                },
            }
            ids = {}
            for endpoint, body in bodies.items():
                r = c.post(f"/v2/{endpoint}", json=body)
                assert r.status_code == 202, (endpoint, r.text)
                ids[endpoint] = r.json()["id"]
            # v1 answers with the video itself: streamed from the bucket by the API
            sync = c.post("/v1/image-to-video", json={**T2V, "image_uri": image}, timeout=120)
            assert sync.status_code == 200, sync.text
            assert sync.headers["content-type"] == "video/mp4"
            assert int(sync.headers["content-length"]) == len(sync.content)
            check_media(sync.content, "video/mp4", "v1")
            fetched = 0
            for endpoint, job_id in ids.items():
                done = wait_terminal(c, endpoint, job_id, timeout=180)
                assert done["status"] == "completed", (endpoint, done, srv.log())
                for label, url in done["result"].items():
                    assert urlsplit(url).netloc == urlsplit(S3_URL).netloc, url  # the bucket
                    got = httpx.get(url, timeout=30)
                    assert got.status_code == 200, (endpoint, label, got.text)
                    ctype = "application/zip" if label == "exr_frames_url" else "video/mp4"
                    check_media(got.content, ctype, f"{endpoint} {label}")
                    fetched += 1
            assert fetched == len(bodies)
    finally:
        for proc, _ in workers:
            proc.terminate()
            proc.wait(30)
    logs = [log.read_text() for _, log in workers]
    ran = [set(re.findall(r"job ([\w-]+) completed", text)) for text in logs]
    owners = {m for text in logs for m in re.findall(r"worker (\S+) ready with engine", text)}
    assert all(ran) and len(owners) == 2, (ran, owners)  # both workers did jobs
    assert set(ids.values()) <= set().union(*ran)
    # every byte went to the bucket: no data dir holds a blob or a job's leftovers
    stored = keys_under(bucket, "deploy/")
    assert any(k.startswith("deploy/uploads/") for k in stored), stored
    assert any(k.endswith("/request/image_uri") for k in stored), stored
    for data_dir in (srv.data_dir, *(tmp_path / f"worker{n}" for n in range(2))):
        files = [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]
        left = [p for p in (data_dir / "work").rglob("*")]
        assert files == [] and left == [], (data_dir, files, left)


def test_retention_deletes_objects_with_rows(
    make_server: Callable[..., Server], bucket: str, tmp_path: Path
) -> None:
    """S3 with the embedded SQLite store: the sweeper deletes a job's objects and an
    expired upload's object along with their rows."""
    env = {
        **s3_env(bucket, "retention"),
        "LTXSERVE_RETENTION_SECONDS": "3",
        "LTXSERVE_UPLOAD_RETENTION_SECONDS": "8",
    }
    srv = make_server(env=env, workers=1)
    with srv.client() as c:
        image = upload_to_bucket(c, image_bytes("PNG"), "image/png")
        assert keys_under(bucket, "retention/") == [f"retention/uploads/{image.split('/')[-1]}"]
        r = c.post("/v2/image-to-video", json={**T2V, "image_uri": image})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        done = wait_terminal(c, "image-to-video", job_id)
        assert done["status"] == "completed", done
        assert httpx.get(done["result"]["video_url"]).status_code == 200
        assert f"retention/jobs/{job_id}/1/video.mp4" in keys_under(bucket, "retention/")
        deadline = time.monotonic() + 30
        while keys_under(bucket, "retention/"):
            assert time.monotonic() < deadline, keys_under(bucket, "retention/")
            time.sleep(0.5)
        assert c.get(f"/v2/image-to-video/{job_id}").status_code == 404
