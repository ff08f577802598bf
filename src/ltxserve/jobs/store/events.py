"""The SQL side of live events: each job's version, and its publication.

Every write that changes a job's status or progress bumps ``jobs.version`` in the
same UPDATE (claim, release, finish; a heartbeat only when the progress moved), and
on PostgreSQL publishes ``<id>:<version>`` on the job events channel in the same
statement (``publishing``: ``UPDATE ... RETURNING pg_notify(...)``): the notification
leaves at commit, with the write or not at all, and needs no round trip of its own
(cost: bench/README.md, "Live events"). SQLite has no cross-process channel; the API
polls ``versions`` instead (jobs/lifecycle/changes.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, String, Update, case, cast, func, select
from sqlalchemy.engine import Connection, make_url

from ltxserve.jobs.lifecycle.changes import CHANNEL, ChangeFeed, PgChangeFeed, PollFeed
from ltxserve.jobs.store.tables import jobs

BUMP = jobs.c.version + 1
"""The version after a status change (an UPDATE's value)."""


def progress_bump(progress: float) -> Any:
    """The version after a progress write: one more only when the progress moved."""
    return case((jobs.c.progress.is_distinct_from(progress), BUMP), else_=jobs.c.version)


def publishing(conn: Connection, stmt: Update) -> Update:
    """``stmt`` (an UPDATE of one job that bumps its version), made to tell every
    listening API process the job's new version at commit (PostgreSQL): ``RETURNING
    pg_notify(...)``, so the notification costs no round trip of its own."""
    if conn.dialect.name != "postgresql":
        return stmt
    payload = jobs.c.id.concat(":").concat(cast(jobs.c.version, String))
    return stmt.returning(func.pg_notify(CHANNEL, payload))


def versions(conn: Connection, ids: list[str]) -> dict[str, int]:
    """job id -> version for those of ``ids`` that exist."""
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(jobs.c.id, jobs.c.version).where(jobs.c.id.in_(ids[start : start + 500]))
        ).all()
        out.update({str(r.id): int(r.version) for r in rows})
    return out


def change_feed(engine: Engine) -> ChangeFeed:
    """LISTEN on PostgreSQL; on SQLite a pacing feed (the hub polls ``versions``)."""
    if engine.dialect.name != "postgresql":
        return PollFeed()
    url = make_url(engine.url).set(drivername="postgresql")
    return PgChangeFeed(url.render_as_string(hide_password=False))
