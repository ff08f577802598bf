"""Job -> the documented status object, with result URLs from the blob store (signed
routes of this server for the local store, presigned bucket URLs for S3)."""

from __future__ import annotations

import time
from typing import Any

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import JobView
from ltxserve.storage.base import BlobStore


def iso_ms(ms: int) -> str:
    """ISO 8601, UTC, millisecond precision, ``Z`` suffix (as the hosted API)."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000))}.{ms % 1000:03d}Z"


def file_url(base_url: str, blobs: BlobStore, blob_key: str, expires_ms: int) -> str:
    """A URL that serves the blob until the job's retention ends."""
    return blobs.url(blob_key, (expires_ms + 999) // 1000, base_url)


def status_body(job: JobView, base_url: str, blobs: BlobStore) -> dict[str, Any]:
    """The status object: the contract's fields, plus the additive ``progress`` and
    ``expires_at`` (docs/api.md, "Additive extensions")."""
    body: dict[str, Any] = {
        "status": job.status.value,
        "id": job.id,
        "created_at": iso_ms(job.created_at),
    }
    if job.status == JobStatus.PENDING:
        body["progress"] = 0  # a re-queued job's old progress is not this attempt's
    elif job.status == JobStatus.PROCESSING:
        if job.progress is not None:
            body["progress"] = round(job.progress, 4)  # when the engine reports it
    elif job.status == JobStatus.COMPLETED:
        assert job.completed_at is not None and job.expires_at is not None
        body["completed_at"] = iso_ms(job.completed_at)
        body["result"] = {
            label: file_url(base_url, blobs, out["key"], job.expires_at)
            for label, out in (job.result or {}).items()
        }
        body["progress"] = 1
        body["expires_at"] = iso_ms(job.expires_at)
        engine = result_engine(job.result)
        if engine is not None:
            body["engine"] = engine  # additive extension (docs/api.md, "Engine labelling")
        video = (job.result or {}).get("video_url") or {}
        if "duration" in video:
            body["duration"] = video["duration"]  # additive extension (docs/api.md)
    elif job.status == JobStatus.FAILED:
        assert job.completed_at is not None
        body["completed_at"] = iso_ms(job.completed_at)
        body["error"] = {
            "type": job.error_type or "api_error",
            "message": job.error_message or "generation failed",
        }
        if job.progress is not None:  # how far it got (a cancelled job: where it stopped)
            body["progress"] = round(job.progress, 4)
        if job.expires_at is not None:
            body["expires_at"] = iso_ms(job.expires_at)
    return body


def result_engine(result: dict[str, Any] | None) -> str | None:
    """The engine that made a completed job's outputs, as the worker recorded it
    next to each output (None for results stored before it did)."""
    for out in (result or {}).values():
        if isinstance(out, dict) and isinstance(out.get("engine"), str):
            return str(out["engine"])
    return None
