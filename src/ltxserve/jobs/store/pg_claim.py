"""PostgreSQL's claim in one statement: lock the oldest runnable job and take it.

``SqlJobStore.claim`` used to send a ``SELECT ... FOR UPDATE SKIP LOCKED`` and then an
``UPDATE``: two round trips inside the claim's transaction, on every job a worker
runs (bench/bench_peers.py). Here the lock and the write are one statement:

    candidate  the oldest runnable row (pending, or processing with its lease run
               out), locked, skipping rows other claims hold: the old SELECT, found
               by two ordered index walks (``oldest_runnable``), whatever the queue's
               length
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

from sqlalchemy import (
    BindParameter,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
    union_all,
    update,
)

from ltxserve.jobs.lifecycle.changes import CHANNEL as EVENTS_CHANNEL
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.tables import jobs

_now: BindParameter[Any] = bindparam("now")


PENDING: Any = literal_column(f"'{JobStatus.PENDING.value}'")
PROCESSING: Any = literal_column(f"'{JobStatus.PROCESSING.value}'")
ONE: Any = literal_column("1")  # a LIMIT the planner sees (a parameter's is a guess)


def oldest_runnable(now: Any, exclude: Any = None) -> Any:
    """The id of the job a claim takes (SQLite's claim too), as a scalar subquery: the
    older of two, the oldest pending job and the oldest processing one whose lease ran
    out by ``now``, each found by its own ordered walk of an index that stops at its
    first row (``ix_jobs_queue`` on status and created_at; for the expired arm of an
    analyzed table PostgreSQL may walk the partial ``ix_jobs_runnable``) and, on
    PostgreSQL, locked with SKIP LOCKED. ``exclude``: a condition no candidate may meet.

    One condition with an OR of the two admits no ordered walk of an index. SQLite and,
    with few pending jobs in the table's statistics (a queue that was short when it
    was last analyzed, or never), PostgreSQL read every live job and sorted them, on
    every claim: a worker draining a backlog of N jobs did O(N) work per job
    (bench/README.md, "seventh pass"). The statuses are literals, not parameters, for a
    prepared statement's generic plan. The expired arm walks the processing jobs,
    about one per worker; on PostgreSQL its row stays locked until the claim commits,
    even when the pending one is older."""
    arms = [
        jobs.c.status == PENDING,
        (jobs.c.status == PROCESSING) & (jobs.c.lease_expires_at < now),
    ]
    if exclude is not None:
        arms = [arm & ~exclude for arm in arms]
    oldest = [
        select(jobs.c.id, jobs.c.created_at)
        .where(arm)
        .order_by(jobs.c.created_at)
        .limit(ONE)
        .with_for_update(skip_locked=True)
        .subquery()
        for arm in arms
    ]
    both = union_all(*(select(arm) for arm in oldest)).subquery("runnable")
    return select(both.c.id).order_by(both.c.created_at).limit(ONE).scalar_subquery()


def _claim(after_finish: bool) -> tuple[Any, Any]:
    """The claim's two CTEs, ``candidate`` (``oldest_runnable``'s row) and ``take``.

    ``after_finish``: in the same statement as a finish (``pg_finish``), whose job is no
    candidate while it is as the finish's compare-and-set expects it (``job_id``,
    ``old_status``, ``attempts``): that row is the finish's to update, and a statement
    that updated one row twice would keep one of the two, unpredictably. In the
    statement's one snapshot the job is still processing, and a lease run out would
    make it look runnable. A job the finish cannot end (released meanwhile) may be
    claimed again, as a new attempt."""
    finishing = None
    if after_finish:
        finishing = (
            (jobs.c.id == bindparam("job_id"))
            & (jobs.c.status == bindparam("old_status"))
            & (jobs.c.attempts == bindparam("attempts"))
        )
    first = oldest_runnable(_now, exclude=finishing)
    candidate = select(jobs).where(jobs.c.id == first).cte("candidate")
    take = (
        update(jobs)
        .where(jobs.c.id == candidate.c.id, candidate.c.attempts < bindparam("max_attempts"))
        .values(
            status=JobStatus.PROCESSING.value,
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("lease_expires_at"),
            attempts=candidate.c.attempts + 1,
            started_at=func.coalesce(candidate.c.started_at, _now),
            version=candidate.c.version + 1,
        )
        .returning(
            jobs.c.id,
            func.pg_notify(
                EVENTS_CHANNEL, jobs.c.id.concat(":").concat(cast(jobs.c.version, String))
            ).label("notified"),
        )
        .cte("take")
    )
    return candidate, take


_candidate, _take = _claim(after_finish=False)
# a data-modifying WITH runs whether or not the outer query reads it; the join makes
# sure its RETURNING (the notification) is computed too
CLAIM = select(_candidate, _take.c.notified).select_from(
    _candidate.outerjoin(_take, _take.c.id == _candidate.c.id)
)

# The claim that follows a finish in one statement (pg_finish.FINISH_CTES go in front:
# ``ended`` is theirs): one row whether or not there is a candidate, ``done`` the
# finish's compare-and-set (1 or 0), then the candidate's columns (NULL for none).
_after, _after_take = _claim(after_finish=True)
_one = select(literal_column("1").label("one")).subquery("one")
CLAIM_AFTER_FINISH = select(
    literal_column("(SELECT count(*) FROM ended)").label("done"), _after, _after_take.c.notified
).select_from(
    _one.outerjoin(_after, true()).outerjoin(_after_take, _after_take.c.id == _after.c.id)
)
