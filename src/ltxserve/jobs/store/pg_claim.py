"""PostgreSQL's claim in one statement: lock the oldest runnable job and take it.

``SqlJobStore.claim`` used to send a ``SELECT ... FOR UPDATE SKIP LOCKED`` and then an
``UPDATE``: two round trips inside the claim's transaction, on every job a worker
runs (bench/bench_peers.py). Here the lock and the write are one statement:

    candidate  the oldest runnable row (pending, or processing with its lease run
               out), locked, skipping rows other claims hold: the old SELECT
    take       the claim's UPDATE of that row, unless its attempts are used up
    result     the candidate as it was before ``take`` (the old SELECT's row), so the
               caller goes on exactly as before: an exhausted job is failed through
               ``SqlJobStore._finish`` in the same transaction, still locked; any other
               is the claim, and the caller builds the claimed job from it with the
               same values the UPDATE wrote (the parameters below)

The take also bumps the job's version and publishes it on the live events' channel
(``RETURNING pg_notify``, as jobs/store/events.py does for every status write); the
outer query joins the take's output so that expression is surely evaluated.

Parameters: ``now``, ``owner``, ``lease_expires_at``, ``max_attempts`` (ms and counts
as ``claim`` computes them). SQLite keeps the two statements: its claim holds the
database's write lock (``BEGIN IMMEDIATE``) and has no ``FOR UPDATE``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, String, bindparam, cast, func, or_, select, update

from ltxserve.jobs.lifecycle.changes import CHANNEL as EVENTS_CHANNEL
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.tables import jobs

_now: BindParameter[Any] = bindparam("now")

_candidate = (
    select(jobs)
    .where(
        or_(
            jobs.c.status == JobStatus.PENDING.value,
            (jobs.c.status == JobStatus.PROCESSING.value) & (jobs.c.lease_expires_at < _now),
        )
    )
    .order_by(jobs.c.created_at)
    .limit(1)
    .with_for_update(skip_locked=True)
    .cte("candidate")
)

_take = (
    update(jobs)
    .where(jobs.c.id == _candidate.c.id, _candidate.c.attempts < bindparam("max_attempts"))
    .values(
        status=JobStatus.PROCESSING.value,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("lease_expires_at"),
        attempts=_candidate.c.attempts + 1,
        started_at=func.coalesce(_candidate.c.started_at, _now),
        version=_candidate.c.version + 1,
    )
    .returning(
        jobs.c.id,
        func.pg_notify(
            EVENTS_CHANNEL, jobs.c.id.concat(":").concat(cast(jobs.c.version, String))
        ).label("notified"),
    )
    .cte("take")
)

# a data-modifying WITH runs whether or not the outer query reads it; the join makes
# sure its RETURNING (the notification) is computed too
CLAIM = select(_candidate, _take.c.notified).select_from(
    _candidate.outerjoin(_take, _take.c.id == _candidate.c.id)
)
