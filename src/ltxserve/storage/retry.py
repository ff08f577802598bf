"""Retries around a blob store, for the worker: an S3 outage must not lose a finished job.

A worker that cannot read a job's inputs or store its result waits and tries again,
with backoff (0.5 s doubling to 8 s), for up to ``LTXSERVE_STORAGE_RETRY_SECONDS``;
``on_wait`` runs before each pause, so the worker renews its lease meanwhile. Past
the deadline the last ``StorageError`` is raised and the worker fails the job with
api_error: never ``completed`` with a URL that serves nothing. ``BlobNotFound`` is an
answer, not an outage, and is never retried. Each attempt is itself bounded (boto3's
timeouts and its own few retries: ``storage.s3.make_client``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ltxserve.storage.base import BlobNotFound, BlobStore, StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_DELAY, MAX_DELAY = 0.5, 8.0


class RetryingBlobs:
    """A ``BlobStore`` whose reads and writes are retried; URLs are made by ``inner``."""

    def __init__(self, inner: BlobStore, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.on_wait: Callable[[], object] | None = None

    def _retry(self, what: str, key: str, op: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.seconds
        delay = FIRST_DELAY
        while True:
            try:
                return op()
            except BlobNotFound:
                raise
            except StorageError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("blob store: %s %s failed; giving up: %s", what, key, exc)
                    raise
                log.warning(
                    "blob store: %s %s failed (%s); retrying in %.1f s",
                    what,
                    key,
                    exc,
                    min(delay, left),
                )
                if self.on_wait is not None:
                    self.on_wait()
                time.sleep(min(delay, left))
                delay = min(MAX_DELAY, delay * 2)

    def put_file(self, key: str, src: Path) -> int:
        return self._retry("upload", key, lambda: self.inner.put_file(key, src))

    def download_to(self, key: str, dest: Path) -> int:
        return self._retry("download", key, lambda: self.inner.download_to(key, dest))

    def size(self, key: str) -> int:
        return self._retry("head", key, lambda: self.inner.size(key))

    def delete_prefix(self, prefix: str) -> int:
        return self._retry("delete", prefix, lambda: self.inner.delete_prefix(prefix))

    def url(self, key: str, expires: int, base_url: str = "") -> str:
        return self.inner.url(key, expires, base_url)

    def upload_url(self, key: str, expires: int, base_url: str = "") -> str:
        return self.inner.upload_url(key, expires, base_url)

    def ping(self) -> None:
        self.inner.ping()  # not retried: a readiness check must answer now
