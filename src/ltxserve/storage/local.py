"""Blobs as files under one directory; writes land atomically by rename."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ltxserve.storage.base import BlobNotFound, StorageError, check_key
from ltxserve.storage.signing import signed_url


class LocalBlobStore:
    def __init__(self, root: Path, signing_key: bytes | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.signing_key = signing_key

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, src: Path) -> int:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            os.replace(src, tmp)
        except OSError:  # other filesystem: copy then rename
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest.stat().st_size

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(key)
        return path

    def download_to(self, key: str, dest: Path) -> int:
        """A private copy for a reader that may change or delete it. A copy, not a hard
        link: a link shares the inode, so a reader truncating its file would truncate
        the blob."""
        src = self.local_path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest.stat().st_size

    def size(self, key: str) -> int:
        return self.local_path(key).stat().st_size

    def url(self, key: str, expires: int, base_url: str = "") -> str:
        """``<base_url>/files/<key>`` signed with HMAC until ``expires`` (unix seconds)."""
        return self._signed(f"/files/{check_key(key)}", expires, base_url)

    def upload_url(self, key: str, expires: int, base_url: str = "") -> str:
        """``<base_url>/uploads/<id>`` for a key ``uploads/<id>``, signed the same way."""
        return self._signed(f"/{check_key(key)}", expires, base_url)

    def _signed(self, path: str, expires: int, base_url: str) -> str:
        if self.signing_key is None:
            raise StorageError("this local blob store was opened without a signing key")
        return signed_url(self.signing_key, base_url, path, expires)

    def delete_prefix(self, prefix: str) -> int:
        path = self._path(prefix)
        if not path.exists():
            return 0
        if path.is_file():
            path.unlink()
            return 1
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path, ignore_errors=True)
        return count

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"blob directory {self.root} is missing or not writable")
