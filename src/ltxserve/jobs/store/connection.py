"""The store's way to the database: connections, and a saturated database as a 503.

SqlJobStore (sql.py) says what it reads and writes; this module says how it gets a
connection and what happens when it cannot:

- ``make_engine``: an engine whose every wait (pool checkout, SQLite's lock, a
  PostgreSQL lock) is bounded by the store's timeout;
- ``is_busy`` and ``busy_as_503``: a database that is saturated or away is reported
  as ``StoreBusyError`` (503 with Retry-After in the API, a pause to a worker), not as
  a bug;
- ``FastQuery``: the read path of the status poll, one SELECT on a bare DBAPI cursor;
- ``WriteTx``: the write transaction every write of the store runs in (``BEGIN
  IMMEDIATE`` on SQLite, behind the process's write lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ltxserve.errors import StoreBusyError

log = logging.getLogger(__name__)


DEFAULT_DB_TIMEOUT = 5.0


def make_engine(url: str, timeout: float = DEFAULT_DB_TIMEOUT) -> Engine:
    """An engine whose every wait (pool checkout, SQLite lock) is bounded by ``timeout``.

    Past it the store raises StoreBusyError (503 with Retry-After) instead of
    holding the request for SQLAlchemy's and SQLite's default 30 s.
    """
    if url.startswith("sqlite"):
        # Connections are cheap and checked out only for one statement or one
        # write transaction, so the pool need not be small; writers queue on the
        # store's own lock (SqlJobStore._write), not on the pool.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeout},
            pool_size=8,
            max_overflow=56,
            pool_timeout=timeout,
        )
        busy_ms = int(timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front, so a claim's read-then-update
            # cannot interleave with another process's claim.
            # Reads run in autocommit: a single SELECT needs no transaction, and
            # skipping BEGIN/ROLLBACK halves the cost of the status poll.
            if conn.info.get("write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # a row or table lock held elsewhere is waited on for as long, not forever
        connect_args["options"] = f"-c lock_timeout={int(timeout * 1000)}"
    # No pool_pre_ping: it costs a round trip on every checkout, i.e. every transaction.
    # A connection the server dropped (a restart) fails its first statement instead, as
    # StoreBusyError (503; a worker retries), and that failure invalidates the whole
    # pool, so every connection opened before it is replaced at its next checkout
    # (SQLAlchemy does this on its own paths; FastQuery does it on its bare one).
    # All 30 connections are kept once opened (no overflow): an overflow connection is
    # closed when it is returned, so under more than pool_size concurrent requests (the
    # API's thread pool runs 40) every request paid a PostgreSQL connect and backend
    # start, and 50 concurrent status polls spent more on connecting than on polling
    # (bench/bench_poll.py --pg-url). Same ceiling of 30 per process as before.
    return create_engine(
        url,
        pool_size=30,
        max_overflow=0,
        pool_timeout=timeout,
        connect_args=connect_args,
    )


def is_busy(exc: BaseException, sqlite: bool) -> bool:
    """True for the errors that mean "the database is saturated or away", not a bug.

    A pool checkout that timed out; SQLite's "database is locked/busy"; any
    PostgreSQL OperationalError (connection refused or lost, too many clients,
    server shutting down).
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        if not sqlite:
            return True
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text
    return False


@contextmanager
def busy_as_503(sqlite: bool) -> Iterator[None]:
    """Turn a saturated-database error into StoreBusyError (domain error; 503 in the API)."""
    try:
        yield
    except (sa_exc.TimeoutError, sa_exc.OperationalError) as exc:
        if is_busy(exc, sqlite):
            log.warning("job store busy: %s", exc.__class__.__name__)
            raise StoreBusyError() from exc
        raise


def out_of_autocommit(driver: Any, invalidate: Callable[[], Any]) -> None:
    """Switch a psycopg connection that ran in autocommit (FastQuery's reads, Batch's
    implicit transactions) back out of it before the pool has it again, as the store's
    other paths expect it, whatever the statements did. One that cannot be switched
    back is invalidated (``invalidate``), never pooled to run a later write's
    statements one by one."""
    try:
        driver.autocommit = False
    except Exception:  # noqa: BLE001 - the connection is gone: the pool drops it
        invalidate()


class FastQuery:
    """A SELECT compiled once for the dialect and run on a bare DBAPI cursor.

    The status poll is the hottest path in the service; going through a pooled
    DBAPI connection directly costs ~40 us against ~250 us for a Core execute
    (bench/bench_poll.py). The SQL is still generated by SQLAlchemy for whichever
    dialect is in use, so nothing here is SQLite-specific.

    The connection is checked out for the one statement and returned at once.
    (It used to be pinned per thread for SQLite to save ~25 us; every thread of
    the API's pool then kept one of the pool's 15 connections for life, and the
    16th thread's write waited 30 s for a connection and answered 500: issue 17.)
    """

    def __init__(self, engine: Engine, stmt: Any, json_columns: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.OperationalError
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positional = compiled.positiontup
        self.json_columns = json_columns

    def one(self, **params: Any) -> dict[str, Any] | None:
        args: Any = [params[name] for name in self.positional] if self.positional else params
        with busy_as_503(self.sqlite):
            try:
                raw = self.engine.raw_connection()
                try:
                    if not self.sqlite:
                        # One statement needs no transaction: in autocommit psycopg sends
                        # the SELECT alone, one round trip instead of BEGIN, SELECT and
                        # ROLLBACK (three). SQLite's reads are autocommit already.
                        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
                    cur = raw.cursor()
                    cur.execute(self.sql, args)
                    row = cur.fetchone()
                    names = [d[0] for d in cur.description] if row is not None else []
                    cur.close()
                except self.dbapi_error as exc:
                    if self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, None):  # type: ignore[arg-type]
                        # as SQLAlchemy's own paths do (the pool has no pre-ping): every
                        # pooled connection older than this one's failure is replaced
                        self.engine.pool._invalidate(raw, exc)
                    raise
                finally:
                    self._out_of_autocommit(raw)
                    raw.close()
            except self.dbapi_error as exc:
                # A bare DBAPI connection raises the driver's own errors (connection
                # refused, server shutting down), which SQLAlchemy wraps only on its
                # own paths: wrapped here, busy_as_503 sees them as it sees those.
                raise sa_exc.OperationalError(self.sql, args, exc) from exc
        return self.values(names, row)

    def _out_of_autocommit(self, raw: Any) -> None:
        if self.sqlite or raw.dbapi_connection is None:
            return
        out_of_autocommit(raw.driver_connection, raw.invalidate)

    def values(self, names: list[str], row: Any) -> dict[str, Any] | None:
        """A row as the store's dict (JSON columns decoded); also for pg_async's reads."""
        if row is None:
            return None
        values = dict(zip(names, row, strict=True))
        for col in self.json_columns:
            if isinstance(values.get(col), str | bytes):
                values[col] = orjson.loads(values[col])
        return values


class WriteTx:
    """A connection in a write transaction (BEGIN IMMEDIATE on SQLite), committed on success.

    Every wait on the way in is bounded by the store's timeout; a saturated
    database, inside or on the way in, leaves as StoreBusyError.
    """

    def __init__(
        self, engine: Engine, sqlite: bool, write_lock: threading.Lock | None, timeout: float
    ) -> None:
        self.engine = engine
        self.sqlite = sqlite
        self.write_lock = write_lock  # the store's: its writers in this process queue on it
        self.timeout = timeout
        self.conn: Connection | None = None
        self.locked = False

    def __enter__(self) -> Connection:
        lock = self.write_lock
        if lock is not None:
            if not lock.acquire(timeout=self.timeout):
                raise StoreBusyError()
            self.locked = True
        try:
            with busy_as_503(self.sqlite):
                self.conn = self.engine.connect()
                self.conn.info["write"] = True
                self.conn.begin()
        except BaseException:
            self._release()
            raise
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.conn is not None
        try:
            with busy_as_503(self.sqlite):
                if exc_type is None:
                    self.conn.commit()
                else:
                    self.conn.rollback()
                    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError) and is_busy(
                        exc, self.sqlite
                    ):
                        raise StoreBusyError() from exc
        finally:
            self._release()

    def _release(self) -> None:
        if self.conn is not None:
            if not self.conn.invalidated:  # .info of a lost connection would reconnect
                self.conn.info.pop("write", None)
            self.conn.close()
            self.conn = None
        if self.locked:
            self.locked = False
            assert self.write_lock is not None
            self.write_lock.release()
