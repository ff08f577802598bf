"""The webhook_deliveries rows in SQL: enqueued as a job ends, claimed with a lease.

``enqueue`` is called by ``SqlJobStore._finish`` on the finishing transaction's
connection, after its compare-and-set succeeded, so a job's terminal status and
its webhook row commit together: a crash loses neither alone, and a job ends
once, so it has one terminal message (the unique index on job and event says so
too).

A delivery loop claims due rows (pending, due, no live lease) in one write
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on
SQLite) and leases them for longer than an attempt can take, so several API
processes never send one row at once. Only the lease holder records an outcome;
a process that dies mid-attempt leaves its lease to run out and the row is sent
again: delivery is at least once, and receivers tell repeats by ``webhook-id``.

``new_delivery`` is pure and shared with the memory store.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import (
    WEBHOOK_EVENTS,
    WEBHOOK_NOTE,
    Delivery,
    DeliveryOutcome,
    Job,
)
from ltxserve.jobs.store.tables import api_keys, webhook_deliveries

T = webhook_deliveries
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


def new_message_id() -> str:
    """The ``webhook-id``: the same on every attempt of one message."""
    return "msg_" + uuid.uuid4().hex


def _note(job: Job, status: JobStatus) -> tuple[dict[str, Any], str] | None:
    """The job's webhook note and the event ``status`` sends it, if it asked for one."""
    note = job.request.get(WEBHOOK_NOTE) if isinstance(job.request, dict) else None
    event = WEBHOOK_EVENTS.get(status)
    if not isinstance(note, dict) or not isinstance(note.get("url"), str) or event is None:
        return None
    return note, event


def wanted(job: Job, status: JobStatus) -> bool:
    """Whether ending ``job`` with ``status`` owes a delivery (the finish's fast path on
    PostgreSQL is for jobs that owe none), without making one."""
    return _note(job, status) is not None


def new_delivery(job: Job, status: JobStatus, now: int) -> Delivery | None:
    """The delivery a job that just ended with ``status`` asks for, if any."""
    found = _note(job, status)
    if found is None:
        return None
    note, event = found
    return Delivery(
        id=new_message_id(),
        job_id=job.id,
        api_key_id=job.api_key_id,
        endpoint=job.endpoint,
        event=event,
        url=note["url"],
        base_url=str(note.get("base_url") or ""),
        payload=None,
        state=PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        completed_at=None,
        log=[],
    )


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    values = {k: m[k] for k in Delivery.__dataclass_fields__}
    values["log"] = list(values["log"] or [])
    return Delivery(**values)


def enqueue(conn: Connection, job: Job, status: JobStatus, now: int) -> None:
    """In the transaction that ended ``job``: its webhook row, if it asked for one."""
    d = new_delivery(job, status, now)
    if d is not None:
        conn.execute(T.insert().values(**d.__dict__))


def claim(conn: Connection, owner: str, limit: int, lease_ms: int, now: int) -> list[Delivery]:
    rows = conn.execute(
        select(T)
        .where(
            T.c.state == PENDING,
            T.c.next_attempt_at <= now,
            or_(T.c.lease_expires_at.is_(None), T.c.lease_expires_at < now),
        )
        .order_by(T.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        conn.execute(
            update(T)
            .where(T.c.id.in_([r.id for r in rows]))
            .values(lease_owner=owner, lease_expires_at=now + lease_ms)
        )
    return [_delivery(r) for r in rows]


def record(conn: Connection, delivery_id: str, owner: str, outcome: DeliveryOutcome) -> bool:
    res = conn.execute(
        update(T)
        .where(T.c.id == delivery_id, T.c.lease_owner == owner, T.c.state == PENDING)
        .values(lease_owner=None, lease_expires_at=None, **outcome.__dict__)
    )
    return bool(res.rowcount)


def of_job(conn: Connection, job_id: str) -> list[Delivery]:
    rows = conn.execute(select(T).where(T.c.job_id == job_id).order_by(T.c.created_at)).all()
    return [_delivery(r) for r in rows]


def secret(conn: Connection, api_key_id: str) -> str | None:
    value = conn.execute(
        select(api_keys.c.webhook_secret).where(api_keys.c.id == api_key_id)
    ).scalar()
    return str(value) if value else None


def set_key_webhook(
    conn: Connection, key_id: str, url: str | None, new_secret: str | None
) -> dict[str, Any] | None:
    values: dict[str, Any] = {"webhook_url": url}
    if new_secret is not None:
        values["webhook_secret"] = new_secret
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    return dict(row._mapping) if row is not None else None


def purge(conn: Connection, ended_before: int) -> int:
    res = conn.execute(delete(T).where(T.c.state != PENDING, T.c.completed_at < ended_before))
    return int(res.rowcount)
