"""One blob-store suite, run against the local directory and a real S3 server.

The S3 server is SeaweedFS on loopback (scripts/s3-start.sh, started by the test
script) with one configured identity, so signatures are really checked.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ltxserve.storage.base import BlobNotFound, StorageError
from ltxserve.storage.local import LocalBlobStore
from ltxserve.storage.s3 import MULTIPART_THRESHOLD, S3BlobStore, parse_storage_url
from ltxserve.storage.signing import verify
from tests.storage.conftest import s3_client

SIGNING_KEY = b"k" * 32
BlobStoreT = LocalBlobStore | S3BlobStore


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStoreT]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs", signing_key=SIGNING_KEY)
    else:
        yield S3BlobStore(s3_client(), request.getfixturevalue("bucket"), f"p-{uuid.uuid4().hex}")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_put_then_download_round_trip(blobs: BlobStoreT, tmp_path: Path) -> None:
    src = write(tmp_path / "in" / "video.mp4", b"\x00\x01video" * 1000)
    assert blobs.put_file("jobs/j1/video.mp4", src) == 7000
    assert not src.exists()  # the file moves into the store
    assert blobs.size("jobs/j1/video.mp4") == 7000
    dest = tmp_path / "cache" / "copy.mp4"
    assert blobs.download_to("jobs/j1/video.mp4", dest) == 7000
    assert dest.read_bytes() == b"\x00\x01video" * 1000
    dest.write_bytes(b"changed")  # a reader's copy is its own
    again = tmp_path / "cache" / "again.mp4"
    blobs.download_to("jobs/j1/video.mp4", again)
    assert again.read_bytes() == b"\x00\x01video" * 1000


def test_missing_and_malformed_keys(blobs: BlobStoreT, tmp_path: Path) -> None:
    with pytest.raises(BlobNotFound):
        blobs.download_to("jobs/nope/video.mp4", tmp_path / "x")
    with pytest.raises(BlobNotFound):
        blobs.size("jobs/nope/video.mp4")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
    for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(BlobNotFound):
            blobs.size(bad)


def test_delete_prefix_takes_the_prefix_and_nothing_beside_it(
    blobs: BlobStoreT, tmp_path: Path
) -> None:
    for key in ("jobs/a/video.mp4", "jobs/a/frames.zip", "jobs/ab/video.mp4"):
        blobs.put_file(key, write(tmp_path / "f", key.encode()))
    assert blobs.delete_prefix("jobs/a") == 2
    assert blobs.delete_prefix("jobs/a") == 0
    with pytest.raises(BlobNotFound):
        blobs.size("jobs/a/video.mp4")
    assert blobs.size("jobs/ab/video.mp4") == len(b"jobs/ab/video.mp4")
    blobs.put_file("uploads/u1", write(tmp_path / "u", b"upload"))
    assert blobs.delete_prefix("uploads/u1") == 1  # a single blob is its own prefix


def test_result_url_serves_the_blob_until_it_expires(blobs: BlobStoreT, tmp_path: Path) -> None:
    blobs.put_file("jobs/j2/video.mp4", write(tmp_path / "v", b"result bytes"))
    expires = int(time.time()) + 600
    url = blobs.url("jobs/j2/video.mp4", expires, base_url="http://api.example")
    if isinstance(blobs, LocalBlobStore):  # an HMAC route of the API itself
        path, _, query = url.removeprefix("http://api.example").partition("?")
        params = dict(p.split("=") for p in query.split("&"))
        assert path == "/files/jobs/j2/video.mp4"
        assert verify(SIGNING_KEY, path, params["expires"], params["signature"])
        assert not verify(SIGNING_KEY, path + "x", params["expires"], params["signature"])
        return
    got = httpx.get(url)  # presigned: straight from the bucket, no credentials
    assert got.status_code == 200 and got.content == b"result bytes"
    assert httpx.get(url.replace("Signature=", "Signature=0")).status_code == 403
    short = blobs.url("jobs/j2/video.mp4", int(time.time()) + 1)
    time.sleep(2.2)
    assert httpx.get(short).status_code == 403


def test_upload_url_takes_one_put(blobs: BlobStoreT, tmp_path: Path) -> None:
    url = blobs.upload_url("uploads/u2", int(time.time()) + 600, base_url="http://api.example")
    if isinstance(blobs, LocalBlobStore):
        assert url.startswith("http://api.example/uploads/u2?expires=")
        return
    assert httpx.put(url, content=b"uploaded bytes").status_code == 200
    dest = tmp_path / "u2"
    blobs.download_to("uploads/u2", dest)
    assert dest.read_bytes() == b"uploaded bytes"
    other = url.replace("uploads/u2", "uploads/u3")  # the signature names one key
    assert httpx.put(other, content=b"x").status_code == 403


def test_large_files_go_up_in_parts(bucket: str, tmp_path: Path) -> None:
    client = s3_client()
    blobs = S3BlobStore(client, bucket, "multipart")
    data = os.urandom(1024) * ((MULTIPART_THRESHOLD + 3 * 1024 * 1024) // 1024)
    blobs.put_file("jobs/big/video.mp4", write(tmp_path / "big", data))
    head = client.head_object(Bucket=bucket, Key="multipart/jobs/big/video.mp4")
    assert head["ETag"].strip('"').endswith("-2"), head["ETag"]  # two parts
    dest = tmp_path / "back"
    blobs.download_to("jobs/big/video.mp4", dest)
    assert dest.read_bytes() == data


def test_wrong_credentials_and_dead_server_are_storage_errors(bucket: str, tmp_path: Path) -> None:
    wrong = S3BlobStore(s3_client(secret="not-the-secret"), bucket, "x")
    with pytest.raises(StorageError) as info:
        wrong.put_file("jobs/j/video.mp4", write(tmp_path / "a", b"a"))
    assert not isinstance(info.value, BlobNotFound)
    assert (tmp_path / "a").exists()  # a failed upload keeps its source for a retry
    dead = S3BlobStore(s3_client(endpoint="http://127.0.0.1:9", retries=1), bucket, "x")
    started = time.monotonic()
    with pytest.raises(StorageError):
        dead.size("jobs/j/video.mp4")
    assert time.monotonic() - started < 30


def test_storage_url_form() -> None:
    assert parse_storage_url("s3://media/ltx/prod/") == ("media", "ltx/prod")
    assert parse_storage_url("s3://media") == ("media", "")
    for bad in ("media/ltx", "file:///tmp/x", "s3:///nobucket"):
        with pytest.raises(StorageError):
            parse_storage_url(bad)
