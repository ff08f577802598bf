"""Uploads: the rules behind ``POST /v1/upload`` and its ``ltx://uploads/<id>`` URIs.

An upload is created by an API key, accepts one PUT until ``url_expires_at``
(1 h), and is usable as an input by that same key until ``expires_at`` (24 h).
The bytes live in the blob store under ``uploads/<id>``; the sweeper deletes
both once the upload has expired. The rows are the store's (``add_upload`` and
friends); who may use which upload, and where its bytes go, is decided here.
Reached through ``JobManager.uploads``.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path

from ltxserve.config import Settings
from ltxserve.jobs.store.base import JobStore, Upload, now_ms, upload_blob_key
from ltxserve.storage.base import BlobStore

log = logging.getLogger(__name__)


class Uploads:
    def __init__(self, settings: Settings, store: JobStore, blobs: BlobStore) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs

    @property
    def tmp_dir(self) -> Path:
        """Where PUT bodies stream to before they land in the blob store."""
        return self.settings.data_dir / "tmp" / "uploads"

    def create(self, api_key_id: str) -> Upload:
        now = now_ms()
        up = Upload(
            id=secrets.token_hex(16),
            api_key_id=api_key_id,
            created_at=now,
            url_expires_at=now + int(self.settings.upload_url_seconds * 1000),
            expires_at=now + int(self.settings.upload_retention_seconds * 1000),
            completed_at=None,
            size=None,
            content_type=None,
        )
        self.store.add_upload(up)
        return up

    def get(self, upload_id: str) -> Upload | None:
        return self.store.get_upload(upload_id)

    def complete(self, upload: Upload, size: int, content_type: str | None, path: Path) -> bool:
        """Record the PUT and store its bytes; False if another PUT got there first or
        the URL expired (the bytes are then not stored)."""
        if not self.store.complete_upload(upload.id, size, content_type):
            return False
        self.blobs.put_file(upload.blob_key, path)
        return True

    def usable(self, api_key_id: str, upload_id: str) -> Upload | None:
        """The upload if ``api_key_id`` may use it as an input now (its own, not expired),
        whether or not its PUT has landed; else None."""
        up = self.store.get_upload(upload_id)
        if up is None or up.api_key_id != api_key_id or up.expires_at <= now_ms():
            return None
        return up

    def sweep(self) -> int:
        """Delete expired uploads (rows and bytes) and stale partial PUTs; return how many rows."""
        deleted = 0
        while ids := self.store.expired_upload_ids():
            for upload_id in ids:
                self.blobs.delete_prefix(upload_blob_key(upload_id))
            deleted += self.store.delete_uploads(ids)
        tmp_dir = self.tmp_dir
        if tmp_dir.is_dir():
            cutoff = time.time() - (self.settings.upload_url_seconds + 3600)
            for part in tmp_dir.glob("*.part"):
                try:
                    if part.stat().st_mtime < cutoff:
                        part.unlink()
                except OSError:
                    pass
        if deleted:
            log.info("sweep: deleted %d expired uploads", deleted)
        return deleted
