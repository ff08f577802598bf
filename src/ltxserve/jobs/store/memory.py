"""MemoryJobStore: the JobStore Protocol in one process's memory.

The fast unit tier: the manager's and the worker's logic run against it in
milliseconds, and tests/store/ runs the same contract tests over it as over
SQLite and PostgreSQL. It keeps the SQL store's rules, not just its shapes:

- every status change goes through ``states.check_transition`` and a
  compare-and-set on (status, attempts), as the SQL UPDATE's WHERE clause does;
- one lock makes each method one transaction, and ``create_job`` runs the
  admission check and the insert under it;
- rows are stored and handed out as JSON round-trips of what was written, so a
  caller that mutates a request or result it got back changes nothing stored,
  and a value the database could not hold fails here too.

Nothing persists and nothing is shared between processes: not for serving.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from ltxserve.jobs.lifecycle.changes import ChangeFeed, LocalFeed
from ltxserve.jobs.lifecycle.doorbell import Doorbell
from ltxserve.jobs.lifecycle.idempotency import conflict
from ltxserve.jobs.lifecycle.states import JobStatus, check_transition
from ltxserve.jobs.store.base import (
    LOST_MESSAGE,
    Admission,
    IdempotencyClaim,
    Job,
    JobStore,
    JobView,
    KeyLimits,
    LimitsState,
    ListQuery,
    now_ms,
)
from ltxserve.jobs.store.deliveries import new_delivery
from ltxserve.jobs.store.memory_accounts import DuplicateError, MemoryAccounts, json_copy

_UNFINISHED = frozenset({JobStatus.PENDING, JobStatus.PROCESSING})


class _AdmissionView:
    """Admission reads under the store's lock, which the insert still holds."""

    def __init__(self, store: MemoryJobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id

    def unfinished_jobs(self, api_key_id: str, cap: int | None = None) -> int:
        n = sum(
            1
            for j in self.store._jobs.values()
            if j.api_key_id == api_key_id and j.status in _UNFINISHED
        )
        return n if cap is None else min(n, cap)

    def limits_state(
        self, api_key_id: str, default_cap: int, pending_cap: int, *, serialise: bool = True
    ) -> LimitsState:
        own = self.store._limits.get(api_key_id, KeyLimits())
        cap = default_cap if own.max_unfinished is None else own.max_unfinished
        pending = sum(1 for j in self.store._jobs.values() if j.status == JobStatus.PENDING)
        return LimitsState(own, self.unfinished_jobs(api_key_id, cap), min(pending, pending_cap))

    def defer_to_insert(self, api_key_id: str) -> bool:
        return False  # nothing to save: the limits are a dict away

    def save_tokens(self, api_key_id: str, tokens: float, at_ms: int) -> None:
        old = self.store._limits.get(api_key_id, KeyLimits())
        self.store._limits[api_key_id] = replace(old, tokens=tokens, tokens_at=at_ms)

    def hold_credits(self, api_key_id: str, amount: int, refusal: Exception) -> None:
        if not self.store._ledger.hold(api_key_id, self.job_id, amount):
            raise refusal


class _Bell(Doorbell):
    """A doorbell between the threads that share one MemoryJobStore."""

    def __init__(self, listeners: set[threading.Event]) -> None:
        self.listeners = listeners
        self.event = threading.Event()
        listeners.add(self.event)

    def ring(self) -> None:
        for event in list(self.listeners):
            event.set()

    def wait(self, timeout: float) -> bool:
        rang = self.event.wait(max(0.0, timeout))
        self.event.clear()
        return rang

    def close(self) -> None:
        self.listeners.discard(self.event)


class MemoryJobStore(MemoryAccounts):
    """The JobStore Protocol (base.py) over dicts and one lock: the job queue here,
    what a key owns beside its jobs in MemoryAccounts."""

    inline_reads = True
    rings_on_insert = False

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[str, Job] = {}  # insertion order = creation order
        # (api_key_id, key) -> the claim that made it and the job it names
        self._idempotency: dict[tuple[str, str], tuple[IdempotencyClaim, str]] = {}
        self._bells: set[threading.Event] = set()
        self._feeds: set[LocalFeed] = set()

    def doorbell(self, data_dir: Path) -> Doorbell:
        return _Bell(self._bells)

    def change_feed(self) -> ChangeFeed:
        return LocalFeed(self._feeds)

    def _changed(self, job: Job) -> None:
        """Store ``job`` with its version bumped and tell the feeds (live events)."""
        job = replace(job, version=job.version + 1)
        self._jobs[job.id] = job
        for feed in list(self._feeds):
            feed.push(job.id, job.version)

    def ping(self) -> None:
        """Always there."""

    def count_jobs(self, in_flight: bool) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            for job in self._jobs.values():
                if (job.status in (JobStatus.PENDING, JobStatus.PROCESSING)) == in_flight:
                    key = (job.status.value, job.endpoint)
                    counts[key] = counts.get(key, 0) + 1
        return counts

    # -- jobs ---------------------------------------------------------------
    def create_job(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str | None = None,
        *,
        admit: Admission | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> Job:
        job = Job.pending(job_id or str(uuid.uuid4()), api_key_id, endpoint, json_copy(request))
        with self._lock:
            if idempotency is not None:
                named = self._named(idempotency)
                if named is not None:
                    return named
            if job.id in self._jobs:  # before admission, whose holds SQL would roll back
                raise DuplicateError(f"job {job.id} exists")
            if admit is not None:
                admit(_AdmissionView(self, job.id), api_key_id, endpoint, request)
            self._jobs[job.id] = job
            if idempotency is not None:
                self._idempotency[(api_key_id, idempotency.key)] = (idempotency, job.id)
        return replace(job, request=request)

    def _named(self, claim: IdempotencyClaim) -> Job | None:
        """The live job a live key names (same hash), as idempotency.claim decides."""
        entry = self._idempotency.get((claim.api_key_id, claim.key))
        if entry is None or entry[0].expires_at <= claim.now:
            return None
        job = self._jobs.get(entry[1])
        if job is None or (job.expires_at is not None and job.expires_at <= claim.now):
            return None
        if entry[0].request_hash != claim.request_hash:
            raise conflict(claim.key)
        return self.get(job.id)

    def list_jobs(self, query: ListQuery) -> list[JobView]:
        with self._lock:
            found = [
                j
                for j in self._jobs.values()
                if j.api_key_id == query.api_key_id
                and (j.expires_at is None or j.expires_at > query.now)
                and (not query.endpoints or j.endpoint in query.endpoints)
                and (not query.statuses or j.status in query.statuses)
                and (query.created_after is None or j.created_at > query.created_after)
                and (query.created_before is None or j.created_at < query.created_before)
                and (query.after is None or (j.created_at, j.id) < query.after)
            ]
        found.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        return [v for j in found[: query.limit] if (v := self.view(j.id)) is not None]

    def delete_expired_idempotency_keys(self, now: int) -> int:
        with self._lock:
            gone = [k for k, (c, _) in self._idempotency.items() if c.expires_at <= now]
            for k in gone:
                del self._idempotency[k]
        return len(gone)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return None
        return replace(job, request=json_copy(job.request), result=json_copy(job.result))

    async def acreate_job(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str,
        *,
        admit: Admission | None = None,
    ) -> Job | None:
        return None  # its lock is a thread's: create_job, in a thread

    async def aview(self, job_id: str) -> JobView | None:
        return self.view(job_id)

    async def aclose(self) -> None:
        pass

    def view(self, job_id: str) -> JobView | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return None
        return JobView(
            **{k: getattr(job, k) for k in JobView.__dataclass_fields__ if k != "result"},
            result=json_copy(job.result),
        )

    def versions(self, ids: list[str]) -> dict[str, int]:
        with self._lock:
            return {i: self._jobs[i].version for i in ids if i in self._jobs}

    def _cas(self, job: Job, **values: Any) -> bool:
        """Write ``values`` if the job still has the status and attempts it was read with."""
        current = self._jobs.get(job.id)
        if current is None or (current.status, current.attempts) != (job.status, job.attempts):
            return False
        self._changed(replace(current, **values))
        return True

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        now: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        retention_ms: int | None = None,
    ) -> bool:
        check_transition(job.status, status)
        values: dict[str, Any] = dict(
            status=status,
            completed_at=now,
            lease_owner=None,
            lease_expires_at=None,
            result=json_copy(result),
        )
        if retention_ms is not None:
            values["expires_at"] = now + retention_ms
        if error:
            values["error_type"], values["error_message"] = error
        if status == JobStatus.COMPLETED:
            values["progress"] = 1.0
        done = self._cas(job, **values)
        if done:  # as in SQL: the job's credits settle with its end, once
            self._ledger.settle(job.id, status)
        if done:  # webhooks: the job's terminal message, under the same lock
            d = new_delivery(job, status, now)
            if d is not None:
                self._deliveries[d.id] = d
        return done

    def claim(
        self, owner: str, lease_seconds: float, max_attempts: int, *, retention_ms: int
    ) -> Job | None:
        with self._lock:
            while True:
                now = now_ms()
                runnable = [
                    j
                    for j in self._jobs.values()
                    if j.status == JobStatus.PENDING
                    or (
                        j.status == JobStatus.PROCESSING
                        and j.lease_expires_at is not None
                        and j.lease_expires_at < now
                    )
                ]
                if not runnable:
                    return None
                job = min(runnable, key=lambda j: j.created_at)
                if job.attempts >= max_attempts:
                    self._finish(
                        job,
                        JobStatus.FAILED,
                        now,
                        retention_ms=retention_ms,
                        error=("api_error", LOST_MESSAGE.format(n=job.attempts)),
                    )
                    continue
                check_transition(job.status, JobStatus.PROCESSING)
                self._cas(
                    job,
                    status=JobStatus.PROCESSING,
                    lease_owner=owner,
                    lease_expires_at=now + int(lease_seconds * 1000),
                    attempts=job.attempts + 1,
                    started_at=job.started_at or now,
                )
                return self.get(job.id)

    def _owned(self, job_id: str, owner: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.lease_owner != owner or job.status != JobStatus.PROCESSING:
            return None
        return job

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, progress: float | None = None
    ) -> bool:
        with self._lock:
            job = self._owned(job_id, owner)
            if job is None:
                return False
            values: dict[str, Any] = {"lease_expires_at": now_ms() + int(lease_seconds * 1000)}
            moved = progress is not None and progress != job.progress
            if progress is not None:
                values["progress"] = progress
            self._jobs[job_id] = replace(job, **values)
            if moved:
                self._changed(self._jobs[job_id])
            return True

    def complete_and_claim(
        self,
        claimed: Job,
        owner: str,
        retention_ms: int,
        *,
        result: dict[str, Any] | None,
        lease_seconds: float,
        max_attempts: int,
    ) -> tuple[bool, Job | None]:
        done = self.finish(
            claimed.id, owner, JobStatus.COMPLETED, retention_ms, result=result, claimed=claimed
        )
        return done, self.claim(owner, lease_seconds, max_attempts, retention_ms=retention_ms)

    def finish(
        self,
        job_id: str,
        owner: str | None,
        status: JobStatus,
        retention_ms: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        claimed: Job | None = None,  # a read here costs nothing: the record decides
    ) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or (owner is not None and job.lease_owner != owner) or job.terminal:
                return False
            return self._finish(
                job, status, now_ms(), result=result, error=error, retention_ms=retention_ms
            )

    def release(self, job_id: str, owner: str) -> bool:
        with self._lock:
            check_transition(JobStatus.PROCESSING, JobStatus.PENDING)
            job = self._owned(job_id, owner)
            if job is None:
                return False
            self._changed(
                replace(job, status=JobStatus.PENDING, lease_owner=None, lease_expires_at=None)
            )
            return True

    def fail_exhausted(self, max_attempts: int, retention_ms: int) -> int:
        now = now_ms()
        n = 0
        with self._lock:
            for job in list(self._jobs.values()):
                if (
                    job.status == JobStatus.PROCESSING
                    and job.lease_expires_at is not None
                    and job.lease_expires_at < now
                    and job.attempts >= max_attempts
                ):
                    n += self._finish(
                        job,
                        JobStatus.FAILED,
                        now,
                        retention_ms=retention_ms,
                        error=("api_error", LOST_MESSAGE.format(n=job.attempts)),
                    )
        return n

    def expired_ids(self, limit: int = 500) -> list[str]:
        now = now_ms()
        with self._lock:
            ids = [
                j.id for j in self._jobs.values() if j.expires_at is not None and j.expires_at < now
            ]
        return ids[:limit]

    def delete_jobs(self, ids: list[str]) -> int:
        with self._lock:
            return sum(self._jobs.pop(i, None) is not None for i in ids)


_KEEPS_PROTOCOL: type[JobStore] = MemoryJobStore  # mypy checks the class against base.JobStore
