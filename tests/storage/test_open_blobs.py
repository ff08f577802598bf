"""Choosing the blob store from the settings, the start-up checks of a multi-machine
deployment, and the worker's retries around the store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ltxserve.config import EX_CONFIG, ConfigError, Settings
from ltxserve.storage import open_blobs
from ltxserve.storage.base import BlobNotFound, StorageError
from ltxserve.storage.local import LocalBlobStore
from ltxserve.storage.retry import RetryingBlobs
from ltxserve.storage.s3 import S3BlobStore
from ltxserve.storage.signing import verify
from tests.storage.conftest import S3_URL, s3_env

PG = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_the_embedded_default_is_the_data_dirs_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret="s3cret")
    blobs = open_blobs(settings)
    assert isinstance(blobs, LocalBlobStore) and blobs.root == tmp_path / "blobs"
    path, _, query = blobs.url("jobs/j/video.mp4", int(time.time()) + 60).partition("?")
    params = dict(p.split("=") for p in query.split("&"))
    assert verify(b"s3cret", path, params["expires"], params["signature"])


@pytest.mark.parametrize("endpoint_var", ["LTXSERVE_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"])
def test_a_storage_url_selects_the_bucket(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint_var: str
) -> None:
    """Endpoint from our setting or the AWS SDKs' variable; credentials and region from
    boto3's chain (the environment here); a custom endpoint is addressed path-style."""
    env = s3_env(bucket, "chosen")
    env[endpoint_var] = env.pop("LTXSERVE_S3_ENDPOINT_URL")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    blobs = open_blobs(Settings(data_dir=tmp_path))
    assert isinstance(blobs, S3BlobStore)
    assert (blobs.bucket, blobs.prefix) == (bucket, "chosen")
    src = tmp_path / "f"
    src.write_bytes(b"through the chain")
    blobs.put_file("jobs/x/video.mp4", src)
    assert blobs.size("jobs/x/video.mp4") == len(b"through the chain")
    assert blobs.url("jobs/x/video.mp4", int(time.time()) + 60).startswith(f"{S3_URL}/{bucket}/")
    assert not (tmp_path / "blobs").exists() or not any((tmp_path / "blobs").iterdir())


def test_postgresql_without_a_shared_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(data_dir=tmp_path, database_url=PG).check_shared()
    assert info.value.setting == "LTXSERVE_SECRET"
    Settings(data_dir=tmp_path, database_url=PG, secret="shared").check_shared()
    Settings(data_dir=tmp_path).check_shared()  # one machine: a key per data dir is fine
    with pytest.raises(ConfigError) as info:
        Settings(data_dir=tmp_path, storage_url="bucket/prefix").check_shared()
    assert info.value.setting == "LTXSERVE_STORAGE_URL"


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_stop_with_one_line(tmp_path: Path, command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH")}
    env.update(LTXSERVE_DATABASE_URL=PG, HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", command, "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == EX_CONFIG, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "LTXSERVE_SECRET" in lines[0], out.stderr
    assert not (tmp_path / "secret.key").exists()


class Flaky:
    """A store whose first ``failures`` calls fail as an unreachable S3 would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def _call(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise StorageError("upload jobs/j/video.mp4: Could not connect to the endpoint URL")
        return 7

    def put_file(self, key: str, src: Path) -> int:
        return self._call()

    def download_to(self, key: str, dest: Path) -> int:
        raise BlobNotFound(key)

    def size(self, key: str) -> int:
        return self._call()

    def url(self, key: str, expires: int, base_url: str = "") -> str:
        return ""

    def upload_url(self, key: str, expires: int, base_url: str = "") -> str:
        return ""

    def delete_prefix(self, prefix: str) -> int:
        return 0


def test_transient_failures_are_retried_with_the_lease_renewed(tmp_path: Path) -> None:
    inner = Flaky(failures=2)
    blobs = RetryingBlobs(inner, seconds=30)
    waits: list[float] = []
    blobs.on_wait = lambda: waits.append(time.monotonic())
    assert blobs.put_file("jobs/j/video.mp4", tmp_path / "f") == 7
    assert inner.calls == 3 and len(waits) == 2
    assert waits[1] - waits[0] >= 0.45  # backoff, not a spin


def test_retries_end_at_the_deadline_and_never_for_a_missing_blob(tmp_path: Path) -> None:
    inner = Flaky(failures=1000)
    started = time.monotonic()
    with pytest.raises(StorageError):
        RetryingBlobs(inner, seconds=1.2).size("jobs/j/video.mp4")
    assert 1.0 <= time.monotonic() - started < 5 and 2 <= inner.calls <= 4
    missing = Flaky(failures=0)
    with pytest.raises(BlobNotFound):
        RetryingBlobs(missing, seconds=30).download_to("jobs/j/video.mp4", tmp_path / "x")


def test_a_killed_workers_job_cache_goes_at_the_next_start(tmp_path: Path) -> None:
    """Job directories are named by their worker's pid: a dead pid's go, a live one's stay."""
    from ltxserve.worker import clean_workdirs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"{gone.pid}-abcd1234-x"
    alive = tmp_path / f"{os.getppid()}-abcd1234-y"
    mine = tmp_path / f"{os.getpid()}-abcd1234-z"  # a restarted container's worker
    for d in (dead, alive, mine):
        (d / "in").mkdir(parents=True)
        (d / "in" / "video_uri").write_bytes(b"copy")
    clean_workdirs(tmp_path)
    assert not dead.exists() and not mine.exists()
    assert (alive / "in" / "video_uri").exists()
