"""JobManager: what the API asks of the job layer (submit, look up, sweep).

It owns the rules that are not storage: ownership and endpoint checks, retention
visibility (a job past retention is gone even before the sweeper deletes it),
and which files belong to a job.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import NotFoundError
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.jobs.contract.requests import validate
from ltxserve.jobs.lifecycle.doorbell import Doorbell, Silent
from ltxserve.jobs.lifecycle.payloads import job_prefix, offload
from ltxserve.jobs.store.sql import Job, JobStore, JobView, now_ms
from ltxserve.jobs.store.uploads import sweep_uploads
from ltxserve.storage.base import BlobStore

log = logging.getLogger(__name__)


class JobManager:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        blobs: BlobStore,
        catalog: Catalog,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.catalog = catalog
        self.doorbell = doorbell or Silent()

    @property
    def retention_ms(self) -> int:
        return int(self.settings.retention_seconds * 1000)

    def validate(self, endpoint: str, body: Any) -> dict[str, Any]:
        return validate(endpoint, body, self.catalog)

    def submit(self, api_key_id: str, endpoint: str, request: dict[str, Any]) -> Job:
        """Store a validated request as a pending job (large data URIs as blobs) and ring."""
        job_id = str(uuid.uuid4())
        stored = offload(job_id, request, self.blobs, self.settings.data_dir / "tmp")
        try:
            job = self.store.create_job(api_key_id, endpoint, stored, job_id=job_id)
        except BaseException:
            if stored is not request:
                self.blobs.delete_prefix(job_prefix(job_id))
            raise
        self.doorbell.ring()
        return job

    def get(self, api_key_id: str, endpoint: str, job_id: str) -> JobView:
        """The job's status view, if this key may see it under this endpoint and it is
        not past retention. Reads no request (a poll must not pay for a large one)."""
        job = self.store.view(job_id) if len(job_id) <= 64 else None
        if (
            job is None
            or job.api_key_id != api_key_id
            or job.endpoint != endpoint
            or (job.expires_at is not None and job.expires_at <= now_ms())
        ):
            raise NotFoundError(f"Job {job_id} not found")
        return job

    def sweep(self) -> dict[str, int]:
        """One pass of housekeeping; idempotent, so any number of processes may run it."""
        failed = self.store.fail_exhausted(self.settings.max_attempts, self.retention_ms)
        deleted = 0
        while ids := self.store.expired_ids():
            for job_id in ids:
                self.blobs.delete_prefix(job_prefix(job_id))
            deleted += self.store.delete_jobs(ids)
        sweep_uploads(
            self.store,
            self.blobs,
            self.settings.data_dir / "tmp" / "uploads",
            self.settings.upload_url_seconds + 3600,
        )
        if failed or deleted:
            log.info("sweep: failed %d lost jobs, deleted %d expired jobs", failed, deleted)
        return {"failed": failed, "deleted": deleted}
