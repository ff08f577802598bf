"""A submit's statements on PostgreSQL, sent together: one round trip where there were many.

The submit's transaction (``SqlJobStore.create_job``) has statements whose
results it must see at once (the limits' read) and statements whose results can
wait until the job's row goes in: the rate bucket's write, the credit hold, the
``Idempotency-Key``'s INSERT, the job's INSERT and the doorbell's NOTIFY. A
``Batch`` queues the second kind and sends everything queued with the next
statement of the first kind, or with the INSERT, in one psycopg pipeline (and the
transaction's BEGIN, when nothing has been sent yet); the server runs them in
order. Each queued statement may carry a ``check`` of its first row, run once
the results are back, in queue order: a short balance raises the admission's own
refusal then, and the transaction rolls back with everything it sent.

Before: BEGIN, key INSERT, lock and read, bucket, hold, job INSERT, NOTIFY,
COMMIT: eight round trips with every feature on, four with none. Now three and
three (bench/README.md, "Admission on the submit path").

Statements are SQLAlchemy Core (or ``text``) compiled once for PostgreSQL and run
on the driver's cursor. SQLite has no round trip to save and keeps its
statements in ``sql.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Json
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Compiled, Connection
from sqlalchemy.sql import ClauseElement

Row = dict[str, Any]
Check = Callable[[Row | None], None]

_COMPILED: dict[int, tuple[ClauseElement, Compiled]] = {}


def compiled(stmt: ClauseElement, conn: Connection) -> Compiled:
    """``stmt`` compiled for this dialect the first time only (module-level
    statements: the cache is keyed by the object)."""
    hit = _COMPILED.get(id(stmt))
    if hit is None or hit[0] is not stmt:
        hit = (stmt, stmt.compile(dialect=conn.dialect))
        _COMPILED[id(stmt)] = hit
    return hit[1]


def json_param(value: Any) -> Any:
    """A JSON column's parameter as the driver takes it (Core's bind processor is
    not in the way here)."""
    return None if value is None else Json(value)


class Batch:
    """Statements of one PostgreSQL transaction waiting to be sent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: list[tuple[str, Any, Check | None]] = []

    def add(self, stmt: ClauseElement, params: dict[str, Any], check: Check | None = None) -> None:
        c = compiled(stmt, self.conn)  # its literals' values filled in too
        self.queue.append((c.string, c.construct_params(params), check))

    def send(self, stmt: ClauseElement | None = None, params: dict[str, Any] | None = None) -> Row:
        """Send the queue (and ``stmt``, whose first row is returned) in one round trip,
        then run the queue's checks in order."""
        if stmt is not None:
            self.add(stmt, params or {})
        queue, self.queue = self.queue, []
        if not queue:
            return {}
        driver: Any = self.conn.connection.driver_connection  # a psycopg Connection
        rows: list[Row | None] = []
        try:
            with driver.pipeline():
                cursors = []
                for sql, values, _ in queue:
                    cur = driver.cursor(row_factory=dict_row)
                    cur.execute(sql, values)
                    cursors.append(cur)
            for cur in cursors:  # the pipeline has synced: every result is here
                rows.append(cur.fetchone() if cur.description is not None else None)
                cur.close()
        except self.conn.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy would wrap it
            raise sa_exc.DBAPIError.instance(
                queue[-1][0], queue[-1][1], exc, self.conn.dialect.loaded_dbapi.Error
            ) from exc
        for (_, _, check), row in zip(queue, rows, strict=True):
            if check is not None:
                check(row)
        return (rows[-1] or {}) if stmt is not None else {}

    def pending(self) -> bool:
        return bool(self.queue)
