"""A submit's statements, sent together: on PostgreSQL one round trip where there were many.

The submit's transaction (``SqlJobStore.create_job``) has statements whose
results it must see at once (the limits' read) and statements whose results can
wait until the job's row goes in: the rate bucket's write, the credit hold, the
``Idempotency-Key``'s INSERT, the job's INSERT and the doorbell's NOTIFY. A
``Batch`` queues the second kind and sends everything queued with the next
statement of the first kind, or with the INSERT, in one psycopg pipeline (and the
transaction's BEGIN, when nothing has been sent yet); the server runs them in
order. Each queued statement may carry a ``check`` of its first row, run once
the results are back, in queue order (a key found already raises ``Replay``), and
the transaction rolls back with everything it sent; or a ``Refusal``: a statement
that fails on the server when it refuses (the credit hold, on a short balance), so
a COMMIT sent after it never runs.

Before: BEGIN, key INSERT, lock and read, bucket, hold, job INSERT, NOTIFY,
COMMIT: eight round trips with every feature on, four with none. Now two and two:
the COMMIT rides with the INSERT when no queued check is left to refuse the
submit, and the credit hold refuses on the server (a ``Refusal``), not in a check
(bench/README.md, "Admission on the submit path"). With every server-wide limit
off, one statement: nothing is read first, and the INSERT itself refuses a key that
has a limit of its own (limits.py, ``OwnLimits``). The worker's claim and finish
are sent in autocommit (``_run_implicit``): the statements up to the protocol's Sync
are one implicit transaction that commits itself, with no BEGIN and COMMIT around it.

Statements are SQLAlchemy Core (or ``text``) compiled once per dialect and run on
the driver's cursor. SQLite has no round trip to save: there the queue runs one
statement after another when sent, which still skips Core's per-statement overhead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import orjson
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.json import Json
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Compiled, Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause

from ltxserve.jobs.store.connection import out_of_autocommit

Row = dict[str, Any]
IDLE = TransactionStatus.IDLE  # nothing sent yet in this transaction
TUPLES = ExecStatus.TUPLES_OK  # a statement that returns rows (none, maybe)
Check = Callable[[Row | None], None]


class Refusal(NamedTuple):
    """A statement that refuses on the server: it fails with ``error`` (a driver
    exception type: the statement's own SQLSTATE), and the batch raises ``raise_``
    instead. Unlike a check, it stops the COMMIT that rides with it (the server
    skips the rest of a failed pipeline)."""

    error: type[BaseException]
    raise_: Exception


class _Item(NamedTuple):
    sql: str
    values: Any
    check: Check | None
    refusal: Refusal | None


_COMPILED: dict[tuple[int, str], tuple[ClauseElement, Compiled]] = {}


def compiled(stmt: ClauseElement, conn: Connection) -> Compiled:
    """``stmt`` compiled for this dialect the first time only (module-level
    statements: the cache is keyed by the object and the dialect's name)."""
    key = (id(stmt), conn.dialect.name)
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not stmt:
        hit = (stmt, stmt.compile(dialect=conn.dialect))
        _COMPILED[key] = hit
    return hit[1]


class Batch:
    """Statements of one write transaction waiting to be sent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.queue: list[_Item] = []

    def add(
        self,
        stmt: ClauseElement,
        params: dict[str, Any],
        check: Check | None = None,
        *,
        json: tuple[str, ...] = (),
        refusal: Refusal | None = None,
    ) -> None:
        """Queue ``stmt``; ``json`` names the parameters bound to JSON columns."""
        c: Any = compiled(stmt, self.conn)  # a SQLCompiler
        # the statement's literals filled in too
        values = self._json(c.construct_params(params), json)
        if c.positiontup is not None:  # SQLite's qmark style
            values = tuple(values[name] for name in c.positiontup)
        self.queue.append(_Item(c.string, values, check, refusal))

    def add_with(
        self,
        ctes: TextClause,
        stmt: ClauseElement,
        params: dict[str, Any],
        *,
        json: tuple[str, ...] = (),
    ) -> None:
        """Queue ``stmt``, a Core statement that begins with CTEs of its own, with the
        CTEs of ``ctes`` (``name AS (...), ...``, as text) in front of them: one
        statement where Core cannot hold data-modifying CTEs written as text
        (PostgreSQL; pg_finish's finish before pg_claim's claim)."""
        head: Any = compiled(ctes, self.conn)
        body: Any = compiled(stmt, self.conn)
        assert body.string.startswith("WITH "), body.string
        values = {**head.construct_params(params), **body.construct_params(params)}
        sql = f"WITH {head.string}, {body.string[len('WITH ') :]}"
        self.queue.append(_Item(sql, self._json(values, json), None, None))

    def _json(self, values: Any, names: tuple[str, ...]) -> Any:
        """``names`` bound to JSON columns: Core's bind processors are not in the way
        here, so this says how to send them."""
        for name in names:
            if values[name] is not None:
                values[name] = (
                    orjson.dumps(values[name]).decode() if self.sqlite else Json(values[name])
                )
        return values

    def send(
        self,
        stmt: ClauseElement | None = None,
        params: dict[str, Any] | None = None,
        *,
        commit: bool = False,
        json: tuple[str, ...] = (),
    ) -> Row:
        """Send the queue (and ``stmt``, whose first row is returned) in one round trip,
        then run the queue's checks in order.

        ``commit``: the transaction ends with this send. On PostgreSQL its COMMIT rides
        in the same pipeline, unless a queued check could still refuse what was sent
        (a check runs once the results are back, too late to roll a commit back); the
        caller's ``commit()`` then finds nothing to do. SQLite commits as before."""
        if stmt is not None:
            self.add(stmt, params or {}, json=json)
        rows = self.send_all(commit=commit)
        return (rows[-1] or {}) if stmt is not None and rows else {}

    def send_all(self, *, commit: bool = False) -> list[Row | None]:
        """``send`` for a queue whose every result the caller reads: the first row of
        each statement, in queue order (None for a statement that returns none)."""
        queue, self.queue = self.queue, []
        if not queue:
            return []
        dbapi = self.conn.dialect.loaded_dbapi
        commit = commit and all(item.check is None for item in queue)
        try:
            rows = self._run_sqlite(queue) if self.sqlite else self._run_pg(queue, commit)
        except dbapi.Error as exc:  # as SQLAlchemy would wrap it (busy: OperationalError)
            _refused(queue, exc, dbapi.Error)
        for item, row in zip(queue, rows, strict=True):
            if item.check is not None:
                item.check(row)
        return rows

    def pending(self) -> bool:
        return bool(self.queue)

    def implicit(self) -> list[tuple[str, Any]] | None:
        """The queue's statements, to be sent elsewhere as one implicit transaction
        (pg_async.py: a submit awaited on the event loop), as ``send(commit=True)``
        would send them in autocommit; None when a check must see their results
        before a COMMIT (a real transaction: ``send``). The batch is done with then."""
        if any(item.check is not None for item in self.queue):
            return None
        return [(item.sql, item.values) for item in self.queue]

    def refused(self, exc: BaseException) -> NoReturn:
        """Raise for what ``implicit``'s statements failed with, as ``send`` would."""
        _refused(self.queue, exc, self.conn.dialect.loaded_dbapi.Error)

    def _run_pg(self, queue: list[_Item], commit: bool) -> list[Row | None]:
        driver: Any = self.conn.connection.driver_connection  # a psycopg Connection
        if commit and driver.info.transaction_status == IDLE:
            return self._run_implicit(driver, queue)
        with driver.pipeline():
            cursors = [_execute(driver, item) for item in queue]
            if commit:  # skipped by the server if a statement above failed
                # as a statement, not driver.commit(): that syncs the pipeline on its
                # own, and the pipeline's exit then syncs again, a second round trip
                driver.cursor().execute(b"COMMIT")
        return _first_rows(cursors)  # the pipeline has synced: every result is here

    def _run_implicit(self, driver: Any, queue: list[_Item]) -> list[Row | None]:
        """A whole transaction in one send (the worker's claim, its finish, both at
        once): in autocommit, the statements up to the protocol's Sync are one implicit
        transaction, which the server commits itself, or rolls back whole when one
        fails; no BEGIN and COMMIT to parse and run. One statement goes as one message,
        several as one pipeline. The connection goes back out of autocommit whatever
        happens (``connection.out_of_autocommit``, as FastQuery's reads do)."""
        driver.autocommit = True
        try:
            if len(queue) == 1:
                return _first_rows([_execute(driver, queue[0])])
            with driver.pipeline():
                cursors = [_execute(driver, item) for item in queue]
            return _first_rows(cursors)
        finally:
            out_of_autocommit(driver, self.conn.invalidate)

    def _run_sqlite(self, queue: list[_Item]) -> list[Row | None]:
        """One after another on the driver's cursor: no round trip to save, but Core's
        per-statement overhead (~50 us, against ~20 us for the statement itself)."""
        driver: Any = self.conn.connection.driver_connection  # a sqlite3 Connection
        cur = driver.cursor()
        rows: list[Row | None] = []
        try:
            for item in queue:
                cur.execute(item.sql, item.values)
                row = cur.fetchone() if cur.description is not None else None
                names = [d[0] for d in cur.description or ()]
                rows.append(None if row is None else dict(zip(names, row, strict=True)))
        finally:
            cur.close()
        return rows


def _refused(queue: list[_Item], exc: BaseException, error: type[Exception]) -> NoReturn:
    """A refusal's own exception for a statement that refused on the server, else the
    driver's error wrapped as SQLAlchemy would."""
    for item in queue:
        if item.refusal is not None and isinstance(exc, item.refusal.error):
            raise item.refusal.raise_ from exc
    raise sa_exc.DBAPIError.instance(queue[-1].sql, queue[-1].values, exc, error) from exc


class NeedsRoundTrip(Exception):
    """A submit built on a ``DryConnection`` had to read (or send) first."""


class DryConnection:
    """A stand-in for a connection that knows its dialect only: a submit's statements
    are queued on it without a connection (``SqlJobStore.acreate_job``), and anything
    that would talk to the database raises NeedsRoundTrip, so that submit goes the
    blocking way instead."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def __getattr__(self, name: str) -> NoReturn:
        raise NeedsRoundTrip(name)


def _execute(driver: Any, item: _Item) -> Any:
    cur = driver.cursor(row_factory=dict_row)
    cur.execute(item.sql, item.values)
    return cur


def _first_rows(cursors: list[Any]) -> list[Row | None]:
    rows: list[Row | None] = []
    for cur in cursors:
        # the result's status, not ``cur.description``: psycopg builds that list of
        # columns anew on each access (~50 us for a claim's row here), and dict_row
        # builds it once more for the row's keys
        result = cur.pgresult
        rows.append(cur.fetchone() if result is not None and result.status == TUPLES else None)
        cur.close()
    return rows
