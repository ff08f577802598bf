"""AsyncPg: the API's non-blocking way to PostgreSQL, for the status poll and the plain submit.

Every other store call of a request runs in the API's thread pool (api/deps.py,
``to_thread``), which on PostgreSQL is the right place for a blocking driver. For
the two hottest calls, one statement each, the hop costs more than the statement:
a SELECT by primary key through a pool thread took ~80 us of the process's CPU and
~110 us of wall time here, against ~45 us and ~65 us on psycopg's async connection
awaited on the loop (bench/README.md, "The submit and the poll without their thread
hop"). So the status poll's read and a submit that needs no read first (its
statements sent in one implicit transaction, batch.py) are awaited on the event
loop instead.

A free list of autocommit ``psycopg.AsyncConnection`` per event loop, at most
``MAX_CONNECTIONS`` at once, is written here rather than taken from psycopg_pool:
while the database is away, a pool's ``getconn`` waits out its whole timeout for
its background workers to reconnect, where a request must answer 503 at once (the
PostgreSQL restart test: the slowest 503 in ~0.04 s). Here a statement that fails
for want of the database drops its connection and raises StoreBusyError, and the
next request connects anew; a healthy connection is reused as long as it lives.

Errors: the database away, refusing connections or too busy to hand out a
connection within the store's timeout is StoreBusyError (503 in the API), as
connection.py's ``busy_as_503`` says for the blocking paths; any other driver
error is the caller's to translate (a submit's refusal, batch.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine

from ltxserve.errors import StoreBusyError

log = logging.getLogger(__name__)
T = TypeVar("T")
Statement = tuple[str, Any]  # SQL in the driver's paramstyle, and its parameters

MAX_CONNECTIONS = 10
"""At most this many statements of one API process in flight at once on this path:
each holds its connection for one round trip, so a handful serve hundreds of clients
(the store's blocking pool keeps its own 30 for everything else)."""


class _LoopPool:
    """The idle connections and the ceiling of one event loop (asyncio objects are
    bound to the loop they first ran on)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)


class AsyncPg:
    """Statements awaited on the running event loop, on connections made the way the
    store's engine makes its own (same parameters, same ``lock_timeout``)."""

    def __init__(self, engine: Engine, timeout: float) -> None:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._cargs = list(cargs)
        self._cparams = dict(cparams)
        self._cparams.setdefault("connect_timeout", max(1, round(timeout)))
        self._cparams["options"] = f"-c lock_timeout={int(timeout * 1000)}"
        self.timeout = timeout
        self._pool: _LoopPool | None = None

    async def fetch_one(self, sql: str, params: Any) -> tuple[list[str], Any] | None:
        """The first row of a SELECT and its column names; None when there is none."""

        async def one(conn: psycopg.AsyncConnection[Any]) -> tuple[list[str], Any] | None:
            async with conn.cursor() as cur:
                await cur.execute(sql, params)
                row = await cur.fetchone()
                if row is None or cur.description is None:
                    return None
                return [d.name for d in cur.description], row

        return await self._run(one)

    async def execute(self, statements: list[Statement]) -> None:
        """``statements`` as one implicit transaction: the server commits them together
        or, when one fails, none (autocommit: everything up to the protocol's Sync).
        A write is never cut in half by a cancelled request: it runs to its end in a
        task of its own, as a thread pool's call would."""

        async def run(conn: psycopg.AsyncConnection[Any]) -> None:
            if len(statements) == 1:
                await conn.execute(*statements[0])
                return
            async with conn.pipeline():
                for sql, params in statements:
                    await conn.execute(sql, params)

        task = asyncio.ensure_future(self._run(run))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_outcome_logged)  # nobody awaits it any more
            raise

    async def _run(self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        pool = self._loop_pool()
        try:
            await asyncio.wait_for(pool.slots.acquire(), self.timeout)
        except TimeoutError:
            log.warning("job store busy: no connection within %.1f s", self.timeout)
            raise StoreBusyError() from None
        conn = None
        try:
            conn = pool.idle.pop() if pool.idle else await self._connect()
            result = await fn(conn)
        except psycopg.OperationalError as exc:  # refused, lost, shutting down, too many
            log.warning("job store busy: %s", exc.__class__.__name__)
            await _close(conn)
            raise StoreBusyError() from exc
        except BaseException:
            # a statement's own error leaves an autocommit connection usable; a
            # cancellation mid-round-trip leaves it in an unknown state
            if conn is not None and (conn.closed or conn.info.transaction_status != _IDLE):
                await _close(conn)
            elif conn is not None:
                pool.idle.append(conn)
            raise
        else:
            pool.idle.append(conn)
            return result
        finally:
            pool.slots.release()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(*self._cargs, autocommit=True, **self._cparams)

    def _loop_pool(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop:
            # another loop (a test's app run twice): its connections cannot serve this
            # one; they close with their loop's end
            self._pool = _LoopPool(loop)
        return self._pool

    async def close(self) -> None:
        """Close the idle connections of the running loop (the API's shutdown)."""
        pool, self._pool = self._pool, None
        if pool is not None and pool.loop is asyncio.get_running_loop():
            for conn in pool.idle:
                await _close(conn)


_IDLE = psycopg.pq.TransactionStatus.IDLE


def _outcome_logged(task: asyncio.Future[None]) -> None:
    """The end of a write whose request went away: a failure is logged here, not left
    for asyncio's "exception was never retrieved"."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("a write whose request was cancelled failed: %r", exc)


async def _close(conn: psycopg.AsyncConnection[Any] | None) -> None:
    if conn is None:
        return
    try:
        await conn.close()
    except Exception:  # noqa: BLE001, S110 - it is being dropped for a failure already
        pass
