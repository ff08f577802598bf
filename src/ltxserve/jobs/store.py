"""JobStore: every read and write of jobs and keys, dialect-neutral SQLAlchemy Core.

SQLite (WAL, ``BEGIN IMMEDIATE`` for claims) on one machine; PostgreSQL
(``FOR UPDATE SKIP LOCKED``) for many. Status changes go through
``states.check_transition`` and a compare-and-set UPDATE, so two processes
racing on one job cannot both win.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, insert, or_, select, update
from sqlalchemy.engine import Connection

from ltxserve.jobs.states import TERMINAL, JobStatus, check_transition
from ltxserve.jobs.tables import api_keys, jobs


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Job:
    id: str
    api_key_id: str
    endpoint: str
    status: JobStatus
    request: dict[str, Any]
    created_at: int
    started_at: int | None
    completed_at: int | None
    expires_at: int | None
    result: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    progress: float | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: int | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def _job(row: Any) -> Job:
    m = row._mapping
    values = {k: m[k] for k in Job.__dataclass_fields__}
    values["status"] = JobStatus(values["status"])
    return Job(**values)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front, so a claim's read-then-update
            # cannot interleave with another process's claim.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    def _write(self) -> Any:
        conn = self.engine.connect()
        conn.info["write"] = True
        return _WriteTx(conn)

    # -- keys ---------------------------------------------------------------
    def add_key(self, key_id: str, name: str, key_hash: str, prefix: str) -> None:
        with self._write() as conn:
            conn.execute(insert(api_keys).values(
                id=key_id, name=name, key_hash=key_hash, prefix=prefix, created_at=now_ms()))

    def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return dict(row._mapping) if row else None

    def list_keys(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [dict(r._mapping) for r in rows]

    def revoke_key(self, key_id_or_prefix: str) -> int:
        with self._write() as conn:
            res = conn.execute(
                update(api_keys)
                .where(or_(api_keys.c.id == key_id_or_prefix,
                           api_keys.c.prefix == key_id_or_prefix))
                .where(api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now_ms()))
        return int(res.rowcount)

    # -- jobs ---------------------------------------------------------------
    def create_job(self, api_key_id: str, endpoint: str, request: dict[str, Any]) -> Job:
        job_id = str(uuid.uuid4())
        values = dict(id=job_id, api_key_id=api_key_id, endpoint=endpoint,
                      status=JobStatus.PENDING.value, request=request, created_at=now_ms(),
                      attempts=0)
        with self._write() as conn:
            conn.execute(insert(jobs).values(**values))
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return _job(row) if row else None

    def claim(self, owner: str, lease_seconds: float, max_attempts: int) -> Job | None:
        """Take the oldest runnable job: pending, or processing with an expired lease.

        A reclaimed job whose attempts are used up is failed instead, and the
        search goes on.
        """
        while True:
            now = now_ms()
            with self._write() as conn:
                row = conn.execute(
                    select(jobs)
                    .where(or_(jobs.c.status == JobStatus.PENDING.value,
                               (jobs.c.status == JobStatus.PROCESSING.value)
                               & (jobs.c.lease_expires_at < now)))
                    .order_by(jobs.c.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    return None
                job = _job(row)
                if job.attempts >= max_attempts:
                    self._finish(conn, job, JobStatus.FAILED, now, error=(
                        "api_error",
                        f"the job was lost by its worker {job.attempts} times and was given up"))
                    continue
                check_transition(job.status, JobStatus.PROCESSING)
                conn.execute(
                    update(jobs).where(jobs.c.id == job.id).values(
                        status=JobStatus.PROCESSING.value, lease_owner=owner,
                        lease_expires_at=now + int(lease_seconds * 1000),
                        attempts=job.attempts + 1, started_at=job.started_at or now))
            return self.get(job.id)

    def heartbeat(self, job_id: str, owner: str, lease_seconds: float,
                  progress: float | None = None) -> bool:
        """Renew the lease; False when the job is no longer ours (reclaimed or finished)."""
        values: dict[str, Any] = {"lease_expires_at": now_ms() + int(lease_seconds * 1000)}
        if progress is not None:
            values["progress"] = progress
        with self._write() as conn:
            res = conn.execute(update(jobs).where(
                jobs.c.id == job_id, jobs.c.lease_owner == owner,
                jobs.c.status == JobStatus.PROCESSING.value).values(**values))
        return bool(res.rowcount)

    def _finish(self, conn: Connection, job: Job, status: JobStatus, now: int, *,
                result: dict[str, Any] | None = None,
                error: tuple[str, str] | None = None,
                retention_ms: int | None = None) -> bool:
        check_transition(job.status, status)
        values: dict[str, Any] = dict(status=status.value, completed_at=now, lease_owner=None,
                                      lease_expires_at=None, result=result)
        if retention_ms is not None:
            values["expires_at"] = now + retention_ms
        if error:
            values["error_type"], values["error_message"] = error
        if status == JobStatus.COMPLETED:
            values["progress"] = 1.0
        res = conn.execute(update(jobs).where(
            jobs.c.id == job.id, jobs.c.status == job.status.value,
            jobs.c.attempts == job.attempts).values(**values))
        return bool(res.rowcount)

    def finish(self, job_id: str, owner: str | None, status: JobStatus, retention_ms: int, *,
               result: dict[str, Any] | None = None,
               error: tuple[str, str] | None = None) -> bool:
        """Move a job to a terminal status; False if another process got there first."""
        with self._write() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
            if row is None:
                return False
            job = _job(row)
            if owner is not None and job.lease_owner != owner:
                return False
            if job.terminal:
                return False
            return self._finish(conn, job, status, now_ms(), result=result, error=error,
                                retention_ms=retention_ms)

    def release(self, job_id: str, owner: str) -> bool:
        """Give a job back to the queue (runner crashed, worker stopping): processing -> pending."""
        with self._write() as conn:
            check_transition(JobStatus.PROCESSING, JobStatus.PENDING)
            res = conn.execute(update(jobs).where(
                jobs.c.id == job_id, jobs.c.lease_owner == owner,
                jobs.c.status == JobStatus.PROCESSING.value).values(
                    status=JobStatus.PENDING.value, lease_owner=None, lease_expires_at=None))
        return bool(res.rowcount)

    def fix_unset_expiry(self, retention_ms: int) -> None:
        """Terminal jobs failed by a claim lack expires_at; give them one."""
        with self._write() as conn:
            conn.execute(update(jobs).where(jobs.c.expires_at.is_(None),
                                            jobs.c.completed_at.is_not(None))
                         .values(expires_at=jobs.c.completed_at + retention_ms))

    def fail_exhausted(self, max_attempts: int, retention_ms: int) -> int:
        """Fail jobs whose lease expired with no attempts left, even with no worker running."""
        now = now_ms()
        n = 0
        with self._write() as conn:
            rows = conn.execute(select(jobs).where(
                jobs.c.status == JobStatus.PROCESSING.value, jobs.c.lease_expires_at < now,
                jobs.c.attempts >= max_attempts)).all()
            for row in rows:
                n += self._finish(conn, _job(row), JobStatus.FAILED, now, retention_ms=retention_ms,
                                  error=("api_error", f"the job was lost by its worker "
                                         f"{row.attempts} times and was given up"))
        return n

    def expired_ids(self, limit: int = 500) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs.c.id).where(jobs.c.expires_at < now_ms())
                                .limit(limit)).all()
        return [r.id for r in rows]

    def delete_jobs(self, ids: list[str]) -> int:
        if not ids:
            return 0
        with self._write() as conn:
            res = conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
        return int(res.rowcount)

    def count_by_status(self) -> dict[str, int]:
        from sqlalchemy import func
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
        return {r[0]: int(r[1]) for r in rows}


class _WriteTx:
    """A connection in a write transaction (BEGIN IMMEDIATE on SQLite), committed on success."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        self.conn.begin()
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.info.pop("write", None)
            self.conn.close()
