"""Uploads: the rows behind ``POST /v1/upload`` and its ``ltx://uploads/<id>`` storage URIs.

An upload is created by an API key, accepts one PUT until ``url_expires_at``
(1 h), and is usable as an input by that same key until ``expires_at`` (24 h).
The bytes live in the blob store under ``uploads/<id>``; the sweeper deletes
both once the upload has expired. Dialect-neutral SQLAlchemy Core, like JobStore.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from ltxserve.jobs.store.sql import JobStore, now_ms
from ltxserve.jobs.store.tables import uploads
from ltxserve.storage.base import BlobStore

log = logging.getLogger(__name__)

STORAGE_PREFIX = "ltx://uploads/"


@dataclass(frozen=True)
class Upload:
    id: str
    api_key_id: str
    created_at: int
    url_expires_at: int
    expires_at: int
    completed_at: int | None
    size: int | None
    content_type: str | None

    @property
    def storage_uri(self) -> str:
        return f"{STORAGE_PREFIX}{self.id}"

    @property
    def blob_key(self) -> str:
        return blob_key(self.id)


def blob_key(upload_id: str) -> str:
    return f"uploads/{upload_id}"


def _upload(row: Any) -> Upload:
    m = row._mapping
    return Upload(**{k: m[k] for k in Upload.__dataclass_fields__})


def valid_id(upload_id: str) -> bool:
    return len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)


def create_upload(
    store: JobStore, api_key_id: str, url_seconds: float, retention_seconds: float
) -> Upload:
    now = now_ms()
    up = Upload(
        id=secrets.token_hex(16),
        api_key_id=api_key_id,
        created_at=now,
        url_expires_at=now + int(url_seconds * 1000),
        expires_at=now + int(retention_seconds * 1000),
        completed_at=None,
        size=None,
        content_type=None,
    )
    with store._write() as conn:
        conn.execute(insert(uploads).values(**up.__dict__))
    return up


def get_upload(store: JobStore, upload_id: str) -> Upload | None:
    if not valid_id(upload_id):
        return None
    with store.read() as conn:
        row = conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()
    return _upload(row) if row else None


def complete_upload(store: JobStore, upload_id: str, size: int, content_type: str | None) -> bool:
    """Mark the PUT as landed; False if another PUT got there first or the URL expired."""
    now = now_ms()
    with store._write() as conn:
        res = conn.execute(
            update(uploads)
            .where(
                uploads.c.id == upload_id,
                uploads.c.completed_at.is_(None),
                uploads.c.url_expires_at > now,
            )
            .values(completed_at=now, size=size, content_type=(content_type or None))
        )
    return bool(res.rowcount)


def expired_upload_ids(store: JobStore, limit: int = 500) -> list[str]:
    with store.read() as conn:
        rows = conn.execute(
            select(uploads.c.id).where(uploads.c.expires_at < now_ms()).limit(limit)
        ).all()
    return [r.id for r in rows]


def delete_uploads(store: JobStore, ids: list[str]) -> int:
    if not ids:
        return 0
    with store._write() as conn:
        res = conn.execute(delete(uploads).where(uploads.c.id.in_(ids)))
    return int(res.rowcount)


def sweep_uploads(
    store: JobStore, blobs: BlobStore, tmp_dir: Path | None = None, tmp_max_age: float = 2 * 3600.0
) -> int:
    """Delete expired uploads (rows and bytes) and stale partial PUTs; return how many rows."""
    deleted = 0
    while ids := expired_upload_ids(store):
        for upload_id in ids:
            blobs.delete_prefix(blob_key(upload_id))
        deleted += delete_uploads(store, ids)
    if tmp_dir is not None and tmp_dir.is_dir():
        cutoff = time.time() - tmp_max_age
        for part in tmp_dir.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
            except OSError:
                pass
    if deleted:
        log.info("sweep: deleted %d expired uploads", deleted)
    return deleted
