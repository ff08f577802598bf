"""The SQL of ``GET /v2/jobs``: one page of a key's jobs, newest first.

Keyset pagination on (created_at, id), descending: a page is "the next
``limit`` jobs of the key older than the last one shown", which
``ix_jobs_key_created`` (api_key_id, created_at, id) answers with one ordered
range scan that stops after the page. So the cost of a page does not grow with
the key's job count, and jobs submitted between two pages (newer than both)
never shift or repeat the page after. Filters on endpoint and status are checked
on the rows the scan passes (a page of a rare status costs as many rows as lie
between its matches); jobs past retention are never listed.
"""

from __future__ import annotations

from sqlalchemy import or_, select, tuple_
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import JobView, ListQuery
from ltxserve.jobs.store.tables import jobs

_COLUMNS = [jobs.c[name] for name in JobView.__dataclass_fields__]


def list_jobs(conn: Connection, query: ListQuery) -> list[JobView]:
    stmt = select(*_COLUMNS).where(
        jobs.c.api_key_id == query.api_key_id,
        or_(jobs.c.expires_at.is_(None), jobs.c.expires_at > query.now),
    )
    if query.endpoints:
        stmt = stmt.where(jobs.c.endpoint.in_(query.endpoints))
    if query.statuses:
        stmt = stmt.where(jobs.c.status.in_([s.value for s in query.statuses]))
    if query.created_after is not None:
        stmt = stmt.where(jobs.c.created_at > query.created_after)
    if query.created_before is not None:
        stmt = stmt.where(jobs.c.created_at < query.created_before)
    if query.after is not None:
        created_at, job_id = query.after
        # a row comparison: both PostgreSQL and SQLite bound the index scan with it
        stmt = stmt.where(tuple_(jobs.c.created_at, jobs.c.id) < tuple_(created_at, job_id))
    stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(query.limit)
    out = []
    for row in conn.execute(stmt):
        values = dict(row._mapping)
        values["status"] = JobStatus(values["status"])
        out.append(JobView(**values))
    return out
