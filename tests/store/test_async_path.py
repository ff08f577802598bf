"""The status poll and the plain submit awaited on an event loop (jobs/store/pg_async.py).

On PostgreSQL ``aview`` and ``acreate_job`` run on psycopg's async connection; a
submit that must read first answers None and leaves nothing behind, so the API runs
the blocking ``create_job`` instead. Memory and SQLite answer ``aview`` inline and
``acreate_job`` with None. The database away, or a connection it dropped, is
StoreBusyError (503), at once, and the next statement connects anew.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ltxserve.config import Settings
from ltxserve.errors import ConcurrencyLimitError, InsufficientFundsError, StoreBusyError
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import AdmissionView, JobStore
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.pg_async import AsyncPg
from ltxserve.jobs.store.sql import SqlJobStore
from tests.store.conftest import pg_database
from tests.store.test_credits_store import hold
from tests.store.test_limits_store import limits

RET = 60_000


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[SqlJobStore]:
    for url in pg_database():
        s = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            yield s
        finally:
            s.engine.dispose()


def _reads_first(view: AdmissionView, key: str, endpoint: str, request: dict[str, Any]) -> None:
    if view.unfinished_jobs(key) >= 1:
        raise ConcurrencyLimitError("one at a time", retry_after=1)


def test_async_submit_and_poll_agree_with_the_blocking_ones(store: JobStore) -> None:
    async def main() -> None:
        made = await store.acreate_job("k1", "text-to-video", {"p": 1}, "job-a")
        postgres = isinstance(store, SqlJobStore) and not store.is_sqlite
        assert (made is not None) == postgres  # the others: create_job, in a thread
        job = made or store.create_job("k1", "text-to-video", {"p": 1}, job_id="job-a")
        assert store.get("job-a") == job  # the row is what acreate_job said it wrote
        assert await store.aview("job-a") == store.view("job-a")
        assert await store.aview("missing") is None
        claimed = store.claim("w", 30, 3, retention_ms=RET)
        assert claimed is not None and claimed.id == "job-a"
        assert store.finish("job-a", "w", JobStatus.COMPLETED, RET, result={"v": 1})
        view = await store.aview("job-a")
        assert view == store.view("job-a") and view is not None and view.result == {"v": 1}

    asyncio.run(main())


def test_a_submit_that_must_read_first_takes_the_blocking_way(pg_store: SqlJobStore) -> None:
    async def main() -> None:
        assert (
            await pg_store.acreate_job("k1", "text-to-video", {}, "r1", admit=_reads_first) is None
        )
        assert pg_store.get("r1") is None  # nothing written: create_job starts afresh
        pg_store.create_job("k1", "text-to-video", {}, job_id="r1", admit=_reads_first)
        with pytest.raises(ConcurrencyLimitError):
            pg_store.create_job("k1", "text-to-video", {}, admit=_reads_first)

    asyncio.run(main())


def test_a_keys_own_limits_send_it_the_blocking_way(pg_store: SqlJobStore, tmp_path: Path) -> None:
    admit = limits(tmp_path, max_unfinished_per_key=0)  # nothing server-wide: deferred
    pg_store.set_key_limits("capped", max_unfinished=1)

    async def main() -> None:
        free = await pg_store.acreate_job("free", "text-to-video", {}, "f1", admit=admit)
        assert free is not None and pg_store.get("f1") is not None
        # the INSERT refuses a key with limits of its own: None, and no row
        assert await pg_store.acreate_job("capped", "text-to-video", {}, "c1", admit=admit) is None
        assert pg_store.get("c1") is None

    asyncio.run(main())
    pg_store.create_job("capped", "text-to-video", {}, job_id="c1", admit=admit)
    with pytest.raises(ConcurrencyLimitError):
        pg_store.create_job("capped", "text-to-video", {}, admit=admit)


def test_a_refused_credit_hold_raises_its_error_and_leaves_nothing(pg_store: SqlJobStore) -> None:
    pg_store.top_up_credits("k1", 50)

    async def main() -> None:
        with pytest.raises(InsufficientFundsError, match="Required: 51 credits"):
            await pg_store.acreate_job("k1", "text-to-video", {}, "h1", admit=hold(51))
        assert pg_store.get("h1") is None
        assert pg_store.credits("k1").balance == 50
        made = await pg_store.acreate_job("k1", "text-to-video", {}, "h2", admit=hold(50))
        assert made is not None and pg_store.credits("k1").held == 50

    asyncio.run(main())


def test_the_database_away_is_busy_at_once() -> None:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    aio = AsyncPg(engine, timeout=5.0)

    async def main() -> float:
        t0 = time.monotonic()
        with pytest.raises(StoreBusyError):
            await aio.fetch_one("SELECT 1", None)
        with pytest.raises(StoreBusyError):
            await aio.execute([("SELECT 1", None)])
        return time.monotonic() - t0

    assert asyncio.run(main()) < 2.0  # refused: no wait for the store's 5 s


def test_a_dropped_connection_is_busy_once_then_replaced(pg_store: SqlJobStore) -> None:
    aio = pg_store.aio
    assert aio is not None
    pg_store.create_job("k1", "text-to-video", {}, job_id="d1")

    async def main() -> None:
        assert await pg_store.aview("d1") is not None  # a connection, now idle
        with pg_store.engine.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert killed >= 1
        with pytest.raises(StoreBusyError):
            await pg_store.aview("d1")
        assert await pg_store.aview("d1") is not None  # a new connection
        assert await pg_store.acreate_job("k1", "text-to-video", {}, "d2") is not None

    asyncio.run(main())


def test_a_cancelled_submit_still_writes_its_row(pg_store: SqlJobStore) -> None:
    """A request that goes away mid-write (its task cancelled) leaves the write to run to
    its end, as a thread's call would: never half a submit."""

    async def main() -> None:
        task = asyncio.ensure_future(pg_store.acreate_job("k1", "text-to-video", {}, "gone"))
        await asyncio.sleep(0)  # into the write: connecting, a few ms
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 5
        while pg_store.get("gone") is None:
            assert time.monotonic() < deadline, "the cancelled write never landed"
            await asyncio.sleep(0.01)

    asyncio.run(main())


def test_aclose_closes_the_loops_connections(pg_store: SqlJobStore) -> None:
    def others() -> int:
        with pg_store.engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )

    async def main() -> None:
        await pg_store.aview("x")
        await asyncio.gather(*(pg_store.aview("x") for _ in range(3)))  # more at once
        opened = others()
        assert opened >= 1
        await pg_store.aclose()
        deadline = time.monotonic() + 5
        while others() != 0:  # a backend leaves pg_stat_activity as it exits
            assert time.monotonic() < deadline, f"{others()} of {opened} left open"
            await asyncio.sleep(0.02)

    asyncio.run(main())
