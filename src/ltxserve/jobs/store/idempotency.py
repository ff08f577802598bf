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

A submit first tries ``claim_later``: the same INSERT, sent with the submit's other
statements (batch.py: one round trip on PostgreSQL); only a key found there
already takes the path above, in a new transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.idempotency import conflict
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import IdempotencyClaim, Job
from ltxserve.jobs.store.batch import Batch
from ltxserve.jobs.store.tables import idempotency_keys, jobs


def _insert(dialect: Any) -> Any:
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here
    return (
        dialect.insert(idempotency_keys)
        .values({c.name: bindparam(c.name) for c in idempotency_keys.columns})
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.job_id)
    )


# built once: building and keying a Core statement per submit cost more than running it
_INSERT = {"postgresql": _insert(postgresql), "sqlite": _insert(sqlite)}


class Replay(Exception):
    """The key was there already: the submit starts again with ``claim`` first."""


def _values(claim: IdempotencyClaim, job_id: str) -> dict[str, Any]:
    return dict(
        api_key_id=claim.api_key_id,
        key=claim.key,
        request_hash=claim.request_hash,
        job_id=job_id,
        created_at=claim.now,
        expires_at=claim.expires_at,
    )


def claim_later(batch: Batch, claim: IdempotencyClaim, job_id: str) -> None:
    """The key's INSERT, queued on the submit's batch (batch.py) and sent
    with its first read. A key that was there already raises Replay when the batch
    is sent, before any admission decides; the caller rolls back and submits again
    through ``claim``, which answers the job the key names (retries are the rare case:
    they pay the round trips, new keys do not)."""

    def check(row: dict[str, Any] | None) -> None:
        if row is None:
            raise Replay()

    batch.add(_INSERT[batch.conn.dialect.name], _values(claim, job_id), check)


def claim(conn: Connection, claim: IdempotencyClaim, job_id: str) -> Job | None:
    """Record ``claim.key`` for ``job_id`` (None: go on and insert the job), or the
    live job it already names (the caller answers that one and inserts nothing)."""
    values = _values(claim, job_id)
    inserted = conn.execute(_INSERT[conn.dialect.name], values).first()
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
