"""``BlobStore.ping``, what /readyz asks of storage: cheap, and false only when the
store cannot be used (directory gone or read-only, bucket missing, server down)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ltxserve.storage.base import StorageError
from ltxserve.storage.local import LocalBlobStore
from ltxserve.storage.s3 import S3BlobStore
from tests.storage.conftest import s3_client


def test_local_ping_follows_the_directory(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.ping()
    (tmp_path / "blobs").rename(tmp_path / "away")
    with pytest.raises(StorageError, match="missing or not writable"):
        store.ping()
    (tmp_path / "away").rename(tmp_path / "blobs")
    if os.geteuid() != 0:  # root writes anywhere: a mode does not stop it
        (tmp_path / "blobs").chmod(0o500)
        try:
            with pytest.raises(StorageError):
                store.ping()
        finally:
            (tmp_path / "blobs").chmod(0o700)
    store.ping()


def test_s3_ping_follows_the_bucket_and_the_server(bucket: str) -> None:
    S3BlobStore(s3_client(), bucket, "p").ping()
    with pytest.raises(StorageError):
        S3BlobStore(s3_client(), f"missing-{uuid.uuid4().hex[:12]}").ping()
    with pytest.raises(StorageError):
        S3BlobStore(s3_client(endpoint="http://127.0.0.1:9", retries=1), bucket).ping()
