"""JobManager: the one way in to the jobs, for the API and the worker alike.

The API submits, looks up, cancels, abandons (v1) and sweeps; the worker claims, beats,
finishes with its output files, fails and releases; both reach uploads through
``manager.uploads``. Neither touches the store or builds a blob key itself.

The manager owns the rules that are not storage: ownership and endpoint checks,
retention visibility (a job past retention is gone even before the sweeper
deletes it), admission (run by the store inside the submit's insert
transaction, see admission.py), the lease and retention settings, and where a
job's files live in the blob store (``jobs/<id>/...``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import CANCELLED_ERROR, JobEndedError, NotFoundError, StoreBusyError
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.jobs.contract.requests import validate
from ltxserve.jobs.lifecycle.admission import admission_from_settings
from ltxserve.jobs.lifecycle.changes import ChangeFeed
from ltxserve.jobs.lifecycle.deliveries import Deliveries
from ltxserve.jobs.lifecycle.doorbell import Doorbell, Silent
from ltxserve.jobs.lifecycle.payloads import job_prefix, needs_offload, offload, restore
from ltxserve.jobs.lifecycle.policy import ContentPolicy, load_policy
from ltxserve.jobs.lifecycle.states import TERMINAL, JobStatus
from ltxserve.jobs.lifecycle.uploads import Uploads
from ltxserve.jobs.store.base import (
    Admission,
    Credits,
    IdempotencyClaim,
    Job,
    JobStore,
    JobView,
    ListQuery,
    now_ms,
)
from ltxserve.storage.base import BlobStore, StorageError

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "The job was cancelled"


@dataclass(frozen=True)
class Submission:
    """What a submit made: the job, and whether it is one an Idempotency-Key had
    already made (``replayed``: nothing was inserted)."""

    job: Job
    replayed: bool = False


@dataclass(frozen=True)
class IdempotencyKey:
    """A submit's ``Idempotency-Key`` and the hash of its request (lifecycle/idempotency.py)."""

    key: str
    request_hash: str


@dataclass(frozen=True)
class JobPage:
    """One page of a key's jobs, newest first; ``more``: older ones match too."""

    jobs: list[JobView]
    more: bool


@dataclass(frozen=True)
class Output:
    """One file a finished job produced, and what to record next to it in the result
    (engine, duration, metadata: plain JSON)."""

    path: Path
    content_type: str
    info: dict[str, Any] = field(default_factory=dict)


class JobManager:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        blobs: BlobStore,
        catalog: Catalog | None = None,
        doorbell: Doorbell | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self._catalog = catalog
        self.doorbell = doorbell or Silent()
        self.admission = admission if admission is not None else admission_from_settings(settings)
        self.content: ContentPolicy | None = load_policy(settings)  # policy.py; None: no checks
        self.uploads = Uploads(settings, store, blobs)
        self.deliveries = Deliveries(settings, store)  # webhooks (docs/webhooks.md)

    @property
    def catalog(self) -> Catalog:
        """The model table; loaded on first use (a worker never validates)."""
        if self._catalog is None:
            self._catalog = Catalog.load(self.settings.models_file)
        return self._catalog

    @property
    def retention_ms(self) -> int:
        return int(self.settings.retention_seconds * 1000)

    @property
    def inline_reads(self) -> bool:
        """True when a lookup is cheap enough to run on the event loop (store.inline_reads)."""
        return self.store.inline_reads

    # -- the API --------------------------------------------------------------
    def validate(self, endpoint: str, body: Any) -> dict[str, Any]:
        return validate(endpoint, body, self.catalog)

    def screen(self, endpoint: str, request: dict[str, Any]) -> None:
        """The content policy's prompt check (ContentFilteredError: 422), before the
        submit fetches or stores anything; the route runs a slow classifier off the loop."""
        if self.content is not None:
            self.content.check_prompt(endpoint, request)

    def screen_inputs(self, job: Job, inputs: Mapping[str, Path]) -> None:
        """The content policy's input check, in the worker once the inputs are local files;
        ContentFilteredError fails the job with that type."""
        if self.content is not None and self.content.needs_inputs:
            self.content.check_inputs(job.endpoint, job.request, inputs)

    def submit(self, api_key_id: str, endpoint: str, request: dict[str, Any]) -> Job:
        """Store a validated request as a pending job (large data URIs as blobs) and ring.

        The admission policy runs inside the insert's transaction; a refusal (a
        domain error) leaves no job and no blob behind."""
        return self.submit_once(api_key_id, endpoint, request, None).job

    def submit_once(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        idempotency: IdempotencyKey | None,
    ) -> Submission:
        """``submit``, under an Idempotency-Key when there is one: a live key of this
        API key with the same request hash answers the job it made (``replayed``),
        before admission, so a retry is never refused a job it already has; another
        hash is IdempotencyConflictError. One step of the insert's transaction."""
        job_id = str(uuid.uuid4())
        claim = None
        if idempotency is not None:
            now = now_ms()
            claim = IdempotencyClaim(
                api_key_id=api_key_id,
                key=idempotency.key,
                request_hash=idempotency.request_hash,
                now=now,
                expires_at=now + int(self.settings.idempotency_seconds * 1000),
            )
        stored = offload(job_id, request, self.blobs, self.settings.data_dir / "tmp")
        try:
            job = self.store.create_job(
                api_key_id, endpoint, stored, job_id=job_id, admit=self.admission, idempotency=claim
            )
        except BaseException:
            if stored is not request:
                self.blobs.delete_prefix(job_prefix(job_id))
            raise
        if job.id != job_id:  # the key's job: this request's offloaded blobs are not used
            if stored is not request:
                self.blobs.delete_prefix(job_prefix(job_id))
            return Submission(job, replayed=True)
        if not self.store.rings_on_insert:  # PostgreSQL: the insert's NOTIFY already did
            self.doorbell.ring()
        return Submission(job)

    async def asubmit(
        self, api_key_id: str, endpoint: str, request: dict[str, Any]
    ) -> Submission | None:
        """``submit_once`` with no Idempotency-Key, awaited on the event loop where the
        store can make the job that way (``store.acreate_job``: PostgreSQL, nothing to
        read first). None, having done nothing, where it cannot or the request has data
        URIs to store as blobs first (file writes): then the caller runs
        ``submit_once`` in a thread."""
        if needs_offload(request):
            return None
        job = await self.store.acreate_job(
            api_key_id, endpoint, request, str(uuid.uuid4()), admit=self.admission
        )
        if job is None:
            return None
        if not self.store.rings_on_insert:
            self.doorbell.ring()
        return Submission(job)

    def list_jobs(
        self,
        api_key_id: str,
        *,
        limit: int,
        endpoints: tuple[str, ...] = (),
        statuses: tuple[JobStatus, ...] = (),
        created_after: int | None = None,
        created_before: int | None = None,
        after: tuple[int, str] | None = None,
    ) -> JobPage:
        """A page of the key's jobs newest first, past retention left out, ``after`` the
        (created_at, id) of the previous page's last job (jobs/store/listing.py)."""
        query = ListQuery(
            api_key_id=api_key_id,
            now=now_ms(),
            limit=limit + 1,  # one more says whether there is a next page
            endpoints=endpoints,
            statuses=statuses,
            created_after=created_after,
            created_before=created_before,
            after=after,
        )
        found = self.store.list_jobs(query)
        return JobPage(found[:limit], more=len(found) > limit)

    def get(self, api_key_id: str, endpoint: str, job_id: str) -> JobView:
        """The job's status view, if this key may see it under this endpoint and it is
        not past retention. Reads no request (a poll must not pay for a large one)."""
        job = self.store.view(job_id) if len(job_id) <= 64 else None
        return _visible(job, api_key_id, endpoint, job_id)

    async def aget(self, api_key_id: str, endpoint: str, job_id: str) -> JobView:
        """``get`` without blocking the event loop (``store.aview``): the status poll."""
        job = await self.store.aview(job_id) if len(job_id) <= 64 else None
        return _visible(job, api_key_id, endpoint, job_id)

    def peek(self, job_id: str) -> JobView | None:
        """The job's status view with no key or endpoint check (live events: the stream
        checked them when it opened; they never change)."""
        view = self.store.view(job_id)
        if view is None or (view.expires_at is not None and view.expires_at <= now_ms()):
            return None
        return view

    def versions(self, job_ids: list[str]) -> dict[str, int]:
        """job id -> version for the jobs that exist (live events poll these on SQLite)."""
        return self.store.versions(job_ids)

    def change_feed(self) -> ChangeFeed:
        """One listener for job changes (lifecycle/changes.py); the API keeps one."""
        return self.store.change_feed()

    def job(self, job_id: str) -> Job | None:
        """The whole job (v1 waits on one it has just submitted)."""
        return self.store.get(job_id)

    def abandon(self, job_id: str, message: str) -> bool:
        """Fail a job whoever holds it (v1: the client left or the wait timed out); the
        worker notices at its next heartbeat. False if it had already finished."""
        return self.store.finish(
            job_id, None, JobStatus.FAILED, self.retention_ms, error=("api_error", message)
        )

    def cancel(self, api_key_id: str, endpoint: str, job_id: str) -> JobView:
        """Cancel a job of this key (``DELETE /v2/{endpoint}/{id}``): the ended job's view.

        A pending or processing job is failed with ``cancelled_error`` through the
        store's one terminal path (``finish``: whatever must commit with an end, such
        as releasing held credits, does), whoever holds it. A pending job is then
        never claimed; the worker running a processing one learns at its next
        progress write or heartbeat (it is no longer its own) and stops the runner at
        the engine's next progress report. A job already cancelled answers the same
        view (a retried DELETE is harmless); one that completed or failed otherwise
        raises ``JobEndedError`` (409). Same visibility rules as ``get`` (404).
        """
        view = self.get(api_key_id, endpoint, job_id)
        # finish() loses only to another end or to a claim/release racing it (the CAS
        # on status and attempts), so a few rounds always settle it
        for _ in range(10):
            if view.status in TERMINAL:
                break
            error = (CANCELLED_ERROR, CANCELLED_MESSAGE)
            if self.store.finish(job_id, None, JobStatus.FAILED, self.retention_ms, error=error):
                log.info("job %s cancelled while %s", job_id, view.status)
            view = self.get(api_key_id, endpoint, job_id)
        else:
            raise StoreBusyError("the job kept changing while being cancelled; retry")
        if view.status == JobStatus.FAILED and view.error_type == CANCELLED_ERROR:
            return view
        detail = "completed"
        if view.status == JobStatus.FAILED:
            detail = f"failed ({view.error_type})"
        raise JobEndedError(f"Job {job_id} has already {detail}; it cannot be cancelled")

    # -- the worker -----------------------------------------------------------
    def claim(self, owner: str) -> Job | None:
        """The oldest runnable job, leased to ``owner`` (StoreBusyError: look again later)."""
        s = self.settings
        self.doorbell.before_claim()
        job = self.store.claim(
            owner, s.lease_seconds, s.max_attempts, retention_ms=self.retention_ms
        )
        self.doorbell.after_claim(job is not None)  # busy now: another idle worker answers
        return job

    def hand_over(self) -> None:
        """The job at hand is not a short one: another idle worker answers rings now
        (doorbell.py: a leader works through a short job)."""
        self.doorbell.hand_over()

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to ``timeout`` for a submission's ring; True when one came (a hint:
        the caller claims either way)."""
        return self.doorbell.wait(timeout)

    def heartbeat(self, job: Job, owner: str, progress: float | None = None) -> bool:
        """Renew the lease (and write progress); False when the job is no longer ours."""
        return self.store.heartbeat(job.id, owner, self.settings.lease_seconds, progress)

    def restore(self, job: Job) -> Job:
        """The job with its request as submitted (large data URIs back from their blobs)."""
        return replace(job, request=restore(job.id, job.request, self.blobs))

    def finish(self, job: Job, owner: str, outputs: Mapping[str, Output]) -> bool:
        """Store each output under the job's prefix and complete the job; False (result
        dropped) when the job is no longer ours."""
        return self.complete(job, owner, self.store_outputs(job, outputs))

    def store_outputs(self, job: Job, outputs: Mapping[str, Output]) -> dict[str, Any]:
        """Put each output under the job's prefix (the blob store takes the file); the
        result to record with ``complete``. Kept apart from ``complete`` so a worker can
        retry the database write alone while the store is away: the files are gone.

        Each attempt (claim) writes under a directory of its own, ``jobs/<id>/<attempt>/``:
        a worker that lost its lease and finishes late cannot overwrite the files of the
        attempt that completed the job, and ``complete`` can delete its own at once."""
        result: dict[str, Any] = {}
        try:
            for label, out in outputs.items():
                key = f"{job_prefix(job.id)}/{job.attempts}/{out.path.name}"
                size = self.blobs.put_file(key, out.path)
                result[label] = {"key": key, "content_type": out.content_type, "size": size}
                result[label].update(out.info)
        except StorageError:
            self._discard([r["key"] for r in result.values()])
            raise
        return result

    def complete(self, job: Job, owner: str, result: dict[str, Any]) -> bool:
        """Record the stored result; False (result dropped) when the job is no longer ours.

        A dropped result's files are deleted now (the job was cancelled, or another
        attempt owns it), not left for retention; unless the job holds them after all: a
        retry of this write whose first try committed but lost its answer (the database
        went away) is refused by the compare-and-set, and is the job's completion."""
        if self.store.finish(
            job.id, owner, JobStatus.COMPLETED, self.retention_ms, result=result, claimed=job
        ):
            return True
        return self._held(job, result)

    def complete_and_claim(
        self, job: Job, owner: str, result: dict[str, Any]
    ) -> tuple[bool, Job | None]:
        """``complete``, then ``claim``: (completed, the next job leased to ``owner``).
        The store may do both at once (one round trip on PostgreSQL), so a worker that
        goes on to its next job does not pay a claim of its own for it."""
        s = self.settings
        self.doorbell.before_claim()
        done, taken = self.store.complete_and_claim(
            job,
            owner,
            self.retention_ms,
            result=result,
            lease_seconds=s.lease_seconds,
            max_attempts=s.max_attempts,
        )
        self.doorbell.after_claim(taken is not None)
        return done or self._held(job, result), taken

    def _held(self, job: Job, result: dict[str, Any]) -> bool:
        """After a refused completion: True when the job holds ``result`` after all (a
        retried write whose first try committed); else its files are deleted (False)."""
        keys = [entry["key"] for entry in result.values()]
        current = self.store.get(job.id)
        held = (current.result or {}).values() if current is not None else ()
        if keys and any(isinstance(e, dict) and e.get("key") in keys for e in held):
            return True
        self._discard(keys)
        return False

    def _discard(self, keys: list[str]) -> None:
        """Best effort: outputs stored before one failed go now (else at retention).

        Straight to the store a retrying wrapper holds (``inner``): this cleanup must not
        wait out another retry window before the job's failure is recorded."""
        blobs = getattr(self.blobs, "inner", self.blobs)
        for key in keys:
            try:
                blobs.delete_prefix(key)
            except StorageError:
                pass

    def credits(self, api_key_id: str) -> Credits:
        """The key's balance and held credits (docs/credits.md)."""
        return self.store.credits(api_key_id)

    def ping_store(self) -> None:
        """A trivial round trip to the job store (/readyz)."""
        self.store.ping()

    def count_jobs(self, in_flight: bool) -> dict[tuple[str, str], int]:
        """(status, endpoint) -> jobs (/metrics; JobStore.count_jobs)."""
        return self.store.count_jobs(in_flight)

    def fail(self, job: Job, owner: str, type_: str, message: str) -> bool:
        """Fail the job with a documented error type; False if it is no longer ours."""
        return self.store.finish(
            job.id, owner, JobStatus.FAILED, self.retention_ms, error=(type_, message), claimed=job
        )

    def release(self, job: Job, owner: str) -> bool:
        """Give the job back to the queue for another attempt."""
        return self.store.release(job.id, owner)

    # -- housekeeping -----------------------------------------------------------
    def sweep(self) -> dict[str, int]:
        """One pass of housekeeping; idempotent, so any number of processes may run it."""
        failed = self.store.fail_exhausted(self.settings.max_attempts, self.retention_ms)
        deleted = 0
        while ids := self.store.expired_ids():
            for job_id in ids:
                self.blobs.delete_prefix(job_prefix(job_id))
            deleted += self.store.delete_jobs(ids)
        self.uploads.sweep()
        self.store.delete_expired_idempotency_keys(now_ms())
        if failed or deleted:
            log.info("sweep: failed %d lost jobs, deleted %d expired jobs", failed, deleted)
        return {"failed": failed, "deleted": deleted}

    def close(self) -> None:
        self.doorbell.close()

    async def aclose(self) -> None:
        """Close what the store opened on the running event loop (the API's shutdown)."""
        await self.store.aclose()


def open_manager(
    settings: Settings, *, catalog: Catalog | None = None, blobs: BlobStore | None = None
) -> JobManager:
    """The manager of a deployment: its database (migrated), blob store and doorbell."""
    from ltxserve.jobs.store.db import open_store
    from ltxserve.storage import open_blobs

    store = open_store(settings)
    return JobManager(
        settings,
        store,
        blobs or open_blobs(settings),
        catalog,
        store.doorbell(settings.data_dir),
    )


def _visible(job: JobView | None, api_key_id: str, endpoint: str, job_id: str) -> JobView:
    """``job`` if this key may see it under this endpoint and it is not past retention."""
    if (
        job is None
        or job.api_key_id != api_key_id
        or job.endpoint != endpoint
        or (job.expires_at is not None and job.expires_at <= now_ms())
    ):
        raise NotFoundError(f"Job {job_id} not found")
    return job
