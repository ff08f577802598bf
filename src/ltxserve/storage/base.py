"""The blob store interface and its errors.

    StorageError          the store failed (S3 answered an error, a multipart upload broke)
    +-- BlobNotFound      no such key: the /files route answers it as NotFoundError (404)

Neither is an ``LtxError``: the caller decides what a missing or failed blob means
for its client (see ``ltxserve.errors``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """The blob store could not do what was asked."""


class BlobNotFound(StorageError):
    """No blob under this key (never stored, or deleted with its job)."""


class BlobStore(Protocol):
    """What every store does. Two implementations: ``LocalBlobStore`` (a directory,
    the embedded default) and ``S3BlobStore`` (an S3-compatible bucket).

    ``url``/``upload_url`` belong to the store because only it knows how its bytes are
    reached: HMAC-signed routes of the API for a directory, presigned URLs for S3.
    No method promises a local path: a reader takes a private copy with
    ``download_to`` and a writer hands over a finished file with ``put_file``, so no
    process needs a file that another one wrote (API and workers on other machines).
    """

    def put_file(self, key: str, src: Path) -> int:
        """Store ``src`` under ``key`` (moving it when possible); return its size. On
        failure ``src`` is left in place, so the caller can retry."""
        ...

    def download_to(self, key: str, dest: Path) -> int:
        """Copy the blob to ``dest`` (atomically; raises BlobNotFound); return its size."""
        ...

    def size(self, key: str) -> int:
        """The blob's size in bytes (raises BlobNotFound)."""
        ...

    def url(self, key: str, expires: int, base_url: str = "") -> str:
        """A URL that serves the blob without credentials until ``expires`` (unix s)."""
        ...

    def upload_url(self, key: str, expires: int, base_url: str = "") -> str:
        """A URL that takes one PUT of the blob's bytes until ``expires`` (unix s)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete the blob ``prefix`` and every blob under ``prefix/``; return how many."""
        ...

    def ping(self) -> None:
        """Cheap reachability check for /readyz: raise StorageError when the store
        cannot be used (directory gone or read-only, bucket unreachable)."""
        ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BlobNotFound(key)
    return key
