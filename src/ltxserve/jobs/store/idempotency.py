"""The SQL of ``Idempotency-Key``: one step of the submit's insert transaction.

``claim`` runs first in ``SqlJobStore.create_job``'s write transaction, before
admission and the insert. It inserts the key's row with ``ON CONFLICT DO
NOTHING RETURNING`` on the primary key (api_key_id, key), one round trip:

- the row went in: the key is new; the job is inserted next and both commit
  together (or neither: a refusal by admission rolls the key back too);
- the row was there: it is read ``FOR UPDATE`` (PostgreSQL). A key that is live
  and names a live job answers that job (same hash) or IdempotencyConflictError
  (another hash); an expired key, or one whose job's retention ended, is taken
  over for the new job.

Two concurrent submits with one key therefore make one job: on PostgreSQL the
second insert waits on the first one's uncommitted row and then sees it; on
SQLite the transaction holds the database's write lock from ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.idempotency import conflict
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import IdempotencyClaim, Job
from ltxserve.jobs.store.tables import idempotency_keys, jobs


def claim(conn: Connection, claim: IdempotencyClaim, job_id: str) -> Job | None:
    """Record ``claim.key`` for ``job_id`` (None: go on and insert the job), or the
    live job it already names (the caller answers that one and inserts nothing)."""
    values = dict(
        api_key_id=claim.api_key_id,
        key=claim.key,
        request_hash=claim.request_hash,
        job_id=job_id,
        created_at=claim.now,
        expires_at=claim.expires_at,
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here
    inserted = conn.execute(
        dialect.insert(idempotency_keys)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.job_id)
    ).first()
    if inserted is not None:
        return None
    where = (
        idempotency_keys.c.api_key_id == claim.api_key_id,
        idempotency_keys.c.key == claim.key,
    )
    row = conn.execute(select(idempotency_keys).where(*where).with_for_update()).one()
    if row.expires_at > claim.now:
        named = conn.execute(
            select(jobs).where(
                jobs.c.id == row.job_id,
                or_(jobs.c.expires_at.is_(None), jobs.c.expires_at > claim.now),
            )
        ).first()
        if named is not None:
            if row.request_hash != claim.request_hash:
                raise conflict(claim.key)
            return _job(named)
    # expired, or its job is gone: the key starts again with this request
    conn.execute(update(idempotency_keys).where(*where).values(**values))
    return None


def delete_expired(conn: Connection, now: int) -> int:
    res = conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
    return int(res.rowcount)


def _job(row: Any) -> Job:
    m = row._mapping
    values = {k: m[k] for k in Job.__dataclass_fields__}
    values["status"] = JobStatus(values["status"])
    return Job(**values)
