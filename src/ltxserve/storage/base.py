"""The blob store interface and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    pass


class BlobNotFound(StorageError):
    pass


class BlobStore(Protocol):
    def put_file(self, key: str, src: Path) -> int:
        """Store ``src`` under ``key`` (moving it when possible); return its size."""
        ...

    def local_path(self, key: str) -> Path:
        """A local file holding the blob (raises BlobNotFound)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix/``; return how many."""
        ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BlobNotFound(key)
    return key
