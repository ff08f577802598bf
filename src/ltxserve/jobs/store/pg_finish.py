"""PostgreSQL's finish in one round trip: end the job, settle its credits, commit.

``SqlJobStore.finish`` on PostgreSQL used to send the job's compare-and-set
UPDATE, then probe the credit ledger for a hold (``ledger.settle``), then COMMIT:
three round trips on every job a worker runs (bench/bench_peers.py). Here the
UPDATE and the settlement are one statement of CTEs, and ``Batch.send`` sends it
with the COMMIT:

    ended    the compare-and-set on (id, status, attempts), as ``_finish`` does it;
             RETURNING publishes the new version on the live events' channel
    held ... ``ledger.SETTLE_CTES``: the job's hold charged (completed) or given
             back (failed), only if ``ended`` has the row and no settlement exists
    result   ``done``: whether the compare-and-set won (1 or 0)

Columns the Core UPDATE leaves alone when it has no value for them (the error,
``expires_at``) keep theirs through ``COALESCE`` of a NULL parameter; ``progress``
becomes 1.0 only for a completed job. A job that asked for a webhook takes the
Core path: its delivery row goes in only once the compare-and-set is known to
have won, which needs the result before the COMMIT.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from ltxserve.jobs.lifecycle.changes import CHANNEL as EVENTS_CHANNEL
from ltxserve.jobs.lifecycle.states import JobStatus, check_transition
from ltxserve.jobs.store import ledger
from ltxserve.jobs.store.base import Job
from ltxserve.jobs.store.batch import Batch
from ltxserve.jobs.store.pg_claim import CLAIM_AFTER_FINISH

FINISH_CTES = text(
    "ended AS (UPDATE jobs SET status = :status, completed_at = :now,"
    " lease_owner = NULL, lease_expires_at = NULL, result = :result,"
    " expires_at = COALESCE(:expires_at, expires_at),"
    " error_type = COALESCE(:error_type, error_type),"
    " error_message = COALESCE(:error_message, error_message),"
    " progress = CASE WHEN :completed THEN 1.0 ELSE progress END,"
    " version = version + 1"
    " WHERE id = :job_id AND status = :old_status AND attempts = :attempts"
    f" RETURNING id, pg_notify('{EVENTS_CHANNEL}', id || ':' || version::text) AS notified),"
    f" {ledger.SETTLE_CTES}"
)
FINISH = text(
    f"WITH {FINISH_CTES.text}"
    " SELECT (SELECT count(*) FROM ended) AS done, (SELECT count(*) FROM settled) AS settled"
)


def queue_finish(
    batch: Batch,
    job: Job,
    status: JobStatus,
    now: int,
    *,
    result: dict[str, Any] | None,
    error: tuple[str, str] | None,
    retention_ms: int | None,
    claim: dict[str, Any] | None = None,
) -> None:
    """Queue ``FINISH`` moving ``job`` (as the caller holds it) to ``status`` on ``batch``;
    its row answers ``done`` (1: the compare-and-set won).

    With ``claim`` (pg_claim's parameters), pg_claim's claim goes in the same
    statement: ``FINISH_CTES`` in front of ``CLAIM_AFTER_FINISH``, whose one row also
    holds the candidate (``id`` NULL for none). One statement, not a pipeline of two:
    psycopg's pipeline cost the worker's side twice the CPU of one statement
    (bench/README.md, "sixth pass")."""
    check_transition(job.status, status)
    params = finish_params(
        job.id,
        job.status,
        job.attempts,
        status,
        now,
        result=result,
        error=error,
        retention_ms=retention_ms,
    )
    if claim is None:
        batch.add(FINISH, params, json=("result",))
    else:
        batch.add_with(FINISH_CTES, CLAIM_AFTER_FINISH, {**claim, **params}, json=("result",))


def finish_params(
    job_id: str,
    old_status: JobStatus,
    attempts: int,
    status: JobStatus,
    now: int,
    *,
    result: dict[str, Any] | None,
    error: tuple[str, str] | None,
    retention_ms: int | None,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "old_status": old_status.value,
        "attempts": attempts,
        "status": status.value,
        "now": now,
        "result": result,
        "expires_at": None if retention_ms is None else now + retention_ms,
        "error_type": error[0] if error else None,
        "error_message": error[1] if error else None,
        "completed": status == JobStatus.COMPLETED,
        "kind": ledger.settle_kind(status),
    }
