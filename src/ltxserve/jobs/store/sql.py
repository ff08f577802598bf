"""SqlJobStore: the job queue's reads and writes, dialect-neutral SQLAlchemy Core.

SQLite (WAL, ``BEGIN IMMEDIATE`` for claims) on one machine; PostgreSQL
(``FOR UPDATE SKIP LOCKED``) for many. Status changes go through
``states.check_transition`` and a compare-and-set UPDATE, so two processes
racing on one job cannot both win. How it reaches the database (the engine, a
saturated database as StoreBusyError, the status poll's bare-cursor read, the write
transaction) is connection.py; the view its submit admits on is admission.py; what
a key owns beside its jobs (the key, limits, webhook, deliveries, uploads, credits)
is sql_accounts.py, the class this one extends.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import psycopg
from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.changes import ChangeFeed
from ltxserve.jobs.lifecycle.doorbell import CHANNEL, Doorbell, FifoDoorbell, PgDoorbell, Silent
from ltxserve.jobs.lifecycle.states import JobStatus, check_transition
from ltxserve.jobs.store import deliveries, events, ledger, listing, pg_finish
from ltxserve.jobs.store import idempotency as idempotency_sql
from ltxserve.jobs.store import limits as limits_sql
from ltxserve.jobs.store.admission import SqlAdmissionView, replay_first
from ltxserve.jobs.store.base import (
    LOST_MESSAGE,
    Admission,
    IdempotencyClaim,
    Job,
    JobView,
    ListQuery,
    now_ms,
)
from ltxserve.jobs.store.base import JobStore as BaseJobStore
from ltxserve.jobs.store.batch import Batch, DryConnection, NeedsRoundTrip
from ltxserve.jobs.store.connection import DEFAULT_DB_TIMEOUT, FastQuery
from ltxserve.jobs.store.pg_async import AsyncPg
from ltxserve.jobs.store.pg_claim import CLAIM as PG_CLAIM
from ltxserve.jobs.store.pg_claim import oldest_runnable
from ltxserve.jobs.store.sql_accounts import SqlAccounts
from ltxserve.jobs.store.tables import jobs

log = logging.getLogger(__name__)


def _claim_params(owner: str, now: int, expires: int, max_attempts: int) -> dict[str, Any]:
    """pg_claim's parameters."""
    return dict(now=now, owner=owner, lease_expires_at=expires, max_attempts=max_attempts)


def _job(row: Any) -> Job:
    m = row if isinstance(row, dict) else row._mapping  # a Batch's row, or Core's
    values = {k: m[k] for k in Job.__dataclass_fields__}
    values["status"] = JobStatus(values["status"])
    return Job(**values)


def _view(values: dict[str, Any] | None) -> JobView | None:
    if values is None:
        return None
    values["status"] = JobStatus(values["status"])
    return JobView(**values)


_GET_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_GET_VIEW = select(*(jobs.c[name] for name in JobView.__dataclass_fields__)).where(
    jobs.c.id == bindparam("job_id")
)


def _insert_job(deferred: bool, ring: bool) -> Any:
    """The job's INSERT: ``deferred``, it refuses a key with limits of its own
    (limits.py); ``ring``, it sends the doorbell's NOTIFY too, in its RETURNING
    (PostgreSQL delivers it at commit). One statement either way."""
    stmt = insert(jobs).values(
        {
            **{n: bindparam(n) for n in ("id", "api_key_id", "endpoint", "status", "request")},
            "created_at": bindparam("created_at"),
            "attempts": limits_sql.ATTEMPTS_UNLESS_OWN_LIMITS if deferred else 0,
        }
    )
    return stmt.returning(func.pg_notify(CHANNEL, "").label("rang")) if ring else stmt


_INSERT_JOB = {(d, r): _insert_job(d, r) for d in (False, True) for r in (False, True)}


class SqlJobStore(SqlAccounts):
    """The JobStore Protocol (base.py) over SQLAlchemy Core: SQLite or PostgreSQL.

    The job queue is here; what a key owns beside its jobs is SqlAccounts."""

    def __init__(self, engine: Engine, timeout: float = DEFAULT_DB_TIMEOUT) -> None:
        super().__init__(engine, timeout)
        # SQLite on local disk answers a primary-key lookup in microseconds: cheaper to
        # run inline than to hop to a thread pool. A networked database must not
        # block an event loop.
        self.inline_reads = self.is_sqlite
        # PostgreSQL: the insert's transaction sends the doorbell's NOTIFY itself, so a
        # submit is one transaction, and workers wake when the row becomes visible.
        self.rings_on_insert = not self.is_sqlite
        self._get_job = FastQuery(engine, _GET_JOB, ("request", "result"))
        self._get_view = FastQuery(engine, _GET_VIEW, ("result",))
        # the status poll and the plain submit, awaited on the API's loop (pg_async.py)
        self.aio = None if self.is_sqlite else AsyncPg(engine, timeout)

    def doorbell(self, data_dir: Path) -> Doorbell:
        """FIFO in the data dir on SQLite (one machine), LISTEN/NOTIFY on PostgreSQL
        (every machine on the database); plain polling if it cannot be set up."""
        try:
            if not self.is_sqlite:
                return PgDoorbell(self.engine)
            return FifoDoorbell(data_dir / "run" / "doorbell")
        except (OSError, AttributeError) as exc:  # AttributeError: no os.mkfifo (not POSIX)
            log.warning("doorbell unavailable (%s); idle workers poll", exc)
        return Silent()

    def change_feed(self) -> ChangeFeed:
        return events.change_feed(self.engine)

    # -- operations (docs/operations.md) ---------------------------------------
    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(select(1)).scalar_one()

    def count_jobs(self, in_flight: bool) -> dict[tuple[str, str], int]:
        states = jobs.c.status.in_([JobStatus.PENDING.value, JobStatus.PROCESSING.value])
        stmt = (
            select(jobs.c.status, jobs.c.endpoint, func.count())
            .where(states if in_flight else ~states)
            .group_by(jobs.c.status, jobs.c.endpoint)
        )
        with self.read() as conn:
            rows = conn.execute(stmt).all()
        return {(str(status), str(endpoint)): int(n) for status, endpoint, n in rows}

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
        """Insert a pending job; ``idempotency`` (idempotency.py), then ``admit`` run
        first in the same write transaction."""
        job_id = job_id or str(uuid.uuid4())
        claim_first, defer = False, True
        while True:
            try:
                return self._create(
                    api_key_id, endpoint, request, job_id, admit, idempotency, claim_first, defer
                )
            except idempotency_sql.Replay:
                if claim_first:
                    raise
                claim_first = True  # the key was there already: again, its claim first
            except limits_sql.OwnLimits:
                if not defer:
                    raise
                defer = False  # the key has limits of its own: again, reading them

    def _create(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str,
        admit: Admission | None,
        idempotency: IdempotencyClaim | None,
        claim_first: bool = False,
        defer: bool = True,
    ) -> Job:
        job = Job.pending(job_id, api_key_id, endpoint, request)
        with self._write() as conn:
            queued = self._queue_create(conn, job, admit, idempotency, claim_first, defer)
            if isinstance(queued, Job):
                return queued
            queued.send(commit=True)
        # the row is exactly what was inserted: no second round trip to read it back
        return job

    def _queue_create(
        self,
        conn: Connection,
        job: Job,
        admit: Admission | None,
        idempotency: IdempotencyClaim | None,
        claim_first: bool,
        defer: bool,
    ) -> Batch | Job:
        """The submit's statements, queued; or the job an Idempotency-Key already names."""
        view = SqlAdmissionView(conn, self.is_sqlite, job.id, may_defer=defer)
        batch = view.batch
        if idempotency is not None:
            if claim_first:
                named = idempotency_sql.claim(conn, idempotency, job.id)
                if named is not None:
                    return named
            else:
                idempotency_sql.claim_later(batch, idempotency, job.id)
        if admit is not None:
            try:
                admit(view, job.api_key_id, job.endpoint, job.request)
            except Exception:
                if batch.pending():
                    replay_first(batch)  # a retried key answers its job, not a refusal
                raise
        refusal = limits_sql.own_limits_refusal(job.api_key_id) if view.deferred else None
        values = dict(
            id=job.id,
            api_key_id=job.api_key_id,
            endpoint=job.endpoint,
            status=job.status.value,
            request=job.request,
            created_at=job.created_at,
        )
        insert_job = _INSERT_JOB[view.deferred, self.rings_on_insert]
        batch.add(insert_job, values, json=("request",), refusal=refusal)
        return batch

    async def acreate_job(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str,
        *,
        admit: Admission | None = None,
    ) -> Job | None:
        """``create_job`` awaited on the event loop (PostgreSQL, pg_async.py) when the
        submit is statements sent in one implicit transaction, nothing read first
        (every server-wide limit off, or deferred to the INSERT): the common case.
        None when it is not (SQLite, a limit that reads, a key with limits of its own):
        the caller runs ``create_job`` instead, which starts again from nothing, since
        nothing was sent or the one transaction sent failed whole."""
        if self.aio is None:
            return None
        job = Job.pending(job_id, api_key_id, endpoint, request)
        dry = cast(Connection, DryConnection(self.engine.dialect))  # dialect only
        try:
            queued = self._queue_create(dry, job, admit, None, False, True)
        except NeedsRoundTrip:
            return None
        assert isinstance(queued, Batch)  # no Idempotency-Key: nothing named a job
        statements = queued.implicit()
        if statements is None:  # a check to run before the commit: a real transaction
            return None
        try:
            await self.aio.execute(statements)
        except psycopg.Error as exc:
            try:
                queued.refused(exc)
            except limits_sql.OwnLimits:
                return None  # the key has limits of its own: create_job reads them
        return job

    def list_jobs(self, query: ListQuery) -> list[JobView]:
        with self.read() as conn:
            return listing.list_jobs(conn, query)

    def delete_expired_idempotency_keys(self, now: int) -> int:
        with self._write() as conn:
            return idempotency_sql.delete_expired(conn, now)

    def get(self, job_id: str) -> Job | None:
        values = self._get_job.one(job_id=job_id)
        if values is None:
            return None
        values["status"] = JobStatus(values["status"])
        return Job(**values)

    def view(self, job_id: str) -> JobView | None:
        """The status poll's read: the columns of JobView only, never the request."""
        return _view(self._get_view.one(job_id=job_id))

    async def aview(self, job_id: str) -> JobView | None:
        """``view`` awaited on the event loop (PostgreSQL: pg_async.py); inline where
        reads are (SQLite)."""
        if self.aio is None:
            return self.view(job_id)
        found = await self.aio.fetch_one(self._get_view.sql, {"job_id": job_id})
        return _view(self._get_view.values(*found) if found else None)

    async def aclose(self) -> None:
        if self.aio is not None:
            await self.aio.close()

    def versions(self, ids: list[str]) -> dict[str, int]:
        with self.read() as conn:
            return events.versions(conn, ids)

    def claim(
        self, owner: str, lease_seconds: float, max_attempts: int, *, retention_ms: int
    ) -> Job | None:
        """Take the oldest runnable job: pending, or processing with an expired lease.

        A reclaimed job whose attempts are used up is failed instead, and the
        search goes on.
        """
        while True:
            now = now_ms()
            expires = now + int(lease_seconds * 1000)
            with self._write() as conn:
                row: Any
                if self.is_sqlite:
                    first = oldest_runnable(now)
                    row = conn.execute(select(jobs).where(jobs.c.id == first)).first()
                else:  # lock and take in one statement, sent with the COMMIT (pg_claim)
                    row = Batch(conn).send(
                        PG_CLAIM, _claim_params(owner, now, expires, max_attempts), commit=True
                    )
                if not row:
                    return None
                claimed = self._take(conn, row, owner, now, expires, max_attempts, retention_ms)
            if claimed is not None:
                return claimed

    def _take(
        self,
        conn: Connection,
        row: Any,
        owner: str,
        now: int,
        expires: int,
        max_attempts: int,
        retention_ms: int,
    ) -> Job | None:
        """The claim of the candidate ``row`` (as it was before the claim): the job as
        leased to ``owner``, or None for a job whose attempts are used up, failed here."""
        job = _job(row)
        if job.attempts >= max_attempts:
            # PostgreSQL committed already: the row is no longer locked, and
            # _finish's compare-and-set on (status, attempts) is the guard
            self._finish(
                conn,
                job,
                JobStatus.FAILED,
                now,
                retention_ms=retention_ms,
                error=("api_error", LOST_MESSAGE.format(n=job.attempts)),
            )
            return None
        check_transition(job.status, JobStatus.PROCESSING)
        claimed = replace(
            job,
            status=JobStatus.PROCESSING,
            lease_owner=owner,
            lease_expires_at=expires,
            attempts=job.attempts + 1,
            started_at=job.started_at or now,
            version=job.version + 1,  # the row is locked: exact
        )
        if self.is_sqlite:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id)
                .values(
                    status=claimed.status.value,
                    lease_owner=claimed.lease_owner,
                    lease_expires_at=claimed.lease_expires_at,
                    attempts=claimed.attempts,
                    started_at=claimed.started_at,
                    version=events.BUMP,
                )
            )
        # the row is what this locked transaction wrote: no second round trip
        return claimed

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
        """``finish`` of the job ``owner`` claimed, as completed, then ``claim`` for ``owner``.

        On PostgreSQL the two statements (pg_finish, pg_claim) go in one send, one
        implicit transaction: a worker that drains a queue makes one round trip per
        job, and one that finds the queue empty pays nothing more for looking. The
        claim runs after the finish, so it never sees the job just ended as runnable.
        A job whose end enqueues a webhook takes the two calls (``finish``'s Core path)."""
        status = JobStatus.COMPLETED
        if (
            self.is_sqlite
            or claimed.lease_owner != owner
            or claimed.terminal
            or deliveries.wanted(claimed, status)
        ):
            done = self.finish(
                claimed.id, owner, status, retention_ms, result=result, claimed=claimed
            )
            return done, self.claim(owner, lease_seconds, max_attempts, retention_ms=retention_ms)
        now = now_ms()
        expires = now + int(lease_seconds * 1000)
        with self._write() as conn:
            batch = Batch(conn)
            claim = _claim_params(owner, now, expires, max_attempts)
            pg_finish.queue_finish(
                batch,
                claimed,
                status,
                now,
                result=result,
                error=None,
                retention_ms=retention_ms,
                claim=claim,
            )
            (row,) = batch.send_all(commit=True)
            assert row is not None  # one row, with a candidate or not
            found, taken = row["id"] is not None, None
            if found:
                taken = self._take(conn, row, owner, now, expires, max_attempts, retention_ms)
        if found and taken is None:  # its attempts were used up (failed): look on
            taken = self.claim(owner, lease_seconds, max_attempts, retention_ms=retention_ms)
        return bool(row["done"]), taken

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, progress: float | None = None
    ) -> bool:
        """Renew the lease; False when the job is no longer ours (reclaimed or finished)."""
        values: dict[str, Any] = {"lease_expires_at": now_ms() + int(lease_seconds * 1000)}
        if progress is not None:
            values["progress"] = progress
            values["version"] = events.progress_bump(progress)
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.lease_owner == owner,
                jobs.c.status == JobStatus.PROCESSING.value,
            )
            .values(**values)
        )
        with self._write() as conn:
            res = conn.execute(stmt if progress is None else events.publishing(conn, stmt))
        return bool(res.rowcount)

    def _finish(
        self,
        conn: Connection,
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
            status=status.value,
            completed_at=now,
            lease_owner=None,
            lease_expires_at=None,
            result=result,
            version=events.BUMP,
        )
        if retention_ms is not None:
            values["expires_at"] = now + retention_ms
        if error:
            values["error_type"], values["error_message"] = error
        if status == JobStatus.COMPLETED:
            values["progress"] = 1.0
        res = conn.execute(
            events.publishing(
                conn,
                update(jobs)
                .where(
                    jobs.c.id == job.id,
                    jobs.c.status == job.status.value,
                    jobs.c.attempts == job.attempts,
                )
                .values(**values),
            )
        )
        done = bool(res.rowcount)
        if done:  # the job ended here, once: its credits settle in the same transaction
            ledger.settle(conn, job.id, status)
        if done:  # webhooks: the job's terminal message commits with its end
            deliveries.enqueue(conn, job, status, now)
        return done

    def finish(
        self,
        job_id: str,
        owner: str | None,
        status: JobStatus,
        retention_ms: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        claimed: Job | None = None,
    ) -> bool:
        """Move a job to a terminal status; False if another process got there first."""
        with self._write() as conn:
            if claimed is not None and claimed.id == job_id and claimed.lease_owner == owner:
                # The owner's own claim: no read first. _finish's compare-and-set on
                # (status, attempts) refuses it if the job moved on since (every claim
                # adds an attempt; release, abandon and the reaper change the status).
                job = claimed
            else:
                row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
                if row is None:
                    return False
                job = _job(row)
            if owner is not None and job.lease_owner != owner:
                return False
            if job.terminal:
                return False
            now = now_ms()
            if not self.is_sqlite and not deliveries.wanted(job, status):
                batch = Batch(conn)
                pg_finish.queue_finish(
                    batch, job, status, now, result=result, error=error, retention_ms=retention_ms
                )
                ended = batch.send_all(commit=True)[0]
                return ended is not None and bool(ended["done"])
            return self._finish(
                conn, job, status, now, result=result, error=error, retention_ms=retention_ms
            )

    def release(self, job_id: str, owner: str) -> bool:
        """Give a job back to the queue (runner crashed, worker stopping): processing -> pending."""
        with self._write() as conn:
            check_transition(JobStatus.PROCESSING, JobStatus.PENDING)
            res = conn.execute(
                events.publishing(
                    conn,
                    update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.lease_owner == owner,
                        jobs.c.status == JobStatus.PROCESSING.value,
                    )
                    .values(
                        status=JobStatus.PENDING.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        version=events.BUMP,
                    ),
                )
            )
        return bool(res.rowcount)

    def fail_exhausted(self, max_attempts: int, retention_ms: int) -> int:
        """Fail jobs whose lease expired with no attempts left, even with no worker running."""
        now = now_ms()
        n = 0
        with self._write() as conn:
            rows = conn.execute(
                select(jobs).where(
                    jobs.c.status == JobStatus.PROCESSING.value,
                    jobs.c.lease_expires_at < now,
                    jobs.c.attempts >= max_attempts,
                )
            ).all()
            for row in rows:
                n += self._finish(
                    conn,
                    _job(row),
                    JobStatus.FAILED,
                    now,
                    retention_ms=retention_ms,
                    error=("api_error", LOST_MESSAGE.format(n=row.attempts)),
                )
        return n

    def expired_ids(self, limit: int = 500) -> list[str]:
        return self._expired(jobs, limit)

    def delete_jobs(self, ids: list[str]) -> int:
        return self._delete(jobs, ids)


_KEEPS_PROTOCOL: type[BaseJobStore] = SqlJobStore  # mypy checks the class against base.JobStore
JobStore = SqlJobStore
"""The old name of SqlJobStore; ``base.JobStore`` is the Protocol both stores keep."""
