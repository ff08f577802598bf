"""Large request fields (data URIs) live in the blob store, not in the job row.

A data URI can be 15 MB of base64. Kept inline, every status poll read and parsed
it (issue 17: 10 clients polling one 6.7 MB job cut everyone's polls from 6,009/s
to 47/s), and the jobs table grew by the size of every input. At submit,
``offload`` moves each data URI longer than ``INLINE_MAX`` to the blob
``jobs/<id>/request/<field>`` and leaves a reference ``ltx://jobs/<id>/request/<field>``
in the row; the blob goes with the job's other files at retention. The worker
calls ``restore`` before it resolves inputs, so inputs and engines see the request
exactly as it was submitted (the preview engine's seed hashes it).

Clients cannot submit such a reference: the only ``ltx://`` URIs accepted at
submit are ``ltx://uploads/...``, and ``restore`` follows only references to the
job's own prefix.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeGuard

from ltxserve.errors import ApiError
from ltxserve.jobs.contract.requests import URI_FIELDS
from ltxserve.storage.base import BlobNotFound, BlobStore

INLINE_MAX = 16 * 1024  # characters of a data URI kept in the row


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def payload_key(job_id: str, field: str) -> str:
    return f"{job_prefix(job_id)}/request/{field}"


def reference(job_id: str, field: str) -> str:
    return f"ltx://{payload_key(job_id, field)}"


def needs_offload(request: dict[str, Any]) -> bool:
    """True when ``offload`` would store a blob (a file write and a put) for ``request``."""
    return any(_large(request.get(field)) for field in URI_FIELDS)


def _large(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("data:") and len(value) > INLINE_MAX


def offload(
    job_id: str, request: dict[str, Any], blobs: BlobStore, tmp_dir: Path
) -> dict[str, Any]:
    """The request to store in the row: large data URIs replaced by blob references."""
    out = dict(request)
    for field in URI_FIELDS:
        value = request.get(field)
        if _large(value):
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="payload-")
            try:
                with os.fdopen(fd, "w", encoding="ascii", errors="strict") as f:
                    f.write(value)
                blobs.put_file(payload_key(job_id, field), Path(name))
            finally:
                Path(name).unlink(missing_ok=True)
            out[field] = reference(job_id, field)
    return out


def restore(job_id: str, request: dict[str, Any], blobs: BlobStore) -> dict[str, Any]:
    """The request as submitted: this job's blob references replaced by their data URIs."""
    out = dict(request)
    for field in URI_FIELDS:
        if request.get(field) == reference(job_id, field):
            with tempfile.TemporaryDirectory(prefix="ltxserve-payload-") as tmp:
                copy = Path(tmp) / field
                try:
                    blobs.download_to(payload_key(job_id, field), copy)
                except BlobNotFound:
                    raise ApiError(f"{field}: the job's stored input is missing") from None
                out[field] = copy.read_text(encoding="ascii")
    return out
