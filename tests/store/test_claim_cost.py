"""What a claim costs as the queue grows, and what the job path's statements cost the
client, on SQLite and PostgreSQL (``pg_claim.oldest_runnable``; bench/README.md,
"seventh pass").

A claim's work is counted, not timed: on PostgreSQL the rows its plan reads (EXPLAIN
ANALYZE of the statement the store sends, rolled back), on SQLite the virtual machine
instructions it runs. Both are deterministic for the same data.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text

from ltxserve.config import Settings
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.batch import Batch
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.pg_claim import CLAIM
from ltxserve.jobs.store.pg_finish import queue_finish
from ltxserve.jobs.store.sql import SqlJobStore, _claim_params
from ltxserve.jobs.store.tables import jobs
from tests.store.conftest import pg_database

RET = 60_000
BACKLOG = 3000
# The scans of a claim that takes the head of the queue: the oldest pending job, the
# oldest expired processing one, the row itself, the update (and the finish's row).
ROWS_PER_CLAIM = 20


def _add_pending(store: SqlJobStore, n: int, start: int) -> None:
    """``n`` pending jobs at once (a backlog arriving faster than workers take it)."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "api_key_id": "k",
            "endpoint": "text-to-video",
            "status": JobStatus.PENDING.value,
            "request": {"prompt": "p"},
            "created_at": start + i,
            "attempts": 0,
        }
        for i in range(n)
    ]
    with store.engine.begin() as conn:
        conn.execute(jobs.insert(), rows)


def _scanned(plan: dict[str, Any]) -> int:
    """Rows the scans of an analyzed plan (auto_explain's JSON) produced or filtered away."""
    rows = 0
    if plan["Node Type"].endswith("Scan") and plan["Node Type"] not in (
        "CTE Scan",
        "Subquery Scan",
    ):
        rows += int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))
    return rows + sum(_scanned(child) for child in plan.get("Plans", ()))


def _pg_rows_read(store: SqlJobStore, sql: str, values: Any) -> int:
    """Rows the statement's scans read, the most of its custom plan (its first five runs
    on a connection) and its generic one (the rest): the statement runs as the store
    runs it, prepared, and auto_explain sends its plan back as a notice; the work is
    rolled back."""
    rows = 0
    with store.engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        for mode in ("force_custom_plan", "force_generic_plan"):
            plans: list[str] = []

            def notice(diag: Any, plans: list[str] = plans) -> None:
                plans.append(diag.message_primary or "")

            driver.add_notice_handler(notice)
            try:
                with driver.transaction(force_rollback=True):
                    driver.execute("LOAD 'auto_explain'")
                    for setting in (
                        f"plan_cache_mode = {mode}",
                        "auto_explain.log_min_duration = 0",
                        "auto_explain.log_analyze = on",
                        "auto_explain.log_format = json",
                        "auto_explain.log_level = notice",
                        "client_min_messages = notice",
                    ):
                        driver.execute(f"SET LOCAL {setting}")
                    driver.execute(sql, values, prepare=True)
            finally:
                driver.remove_notice_handler(notice)
            (plan,) = [p for p in plans if "plan:" in p]
            doc = json.loads(plan.split("plan:", 1)[1])
            rows = max(rows, _scanned(doc["Plan"]))
    return rows


def _pg_claim_rows(store: SqlJobStore) -> dict[str, int]:
    """Rows read by the claim alone and by the claim that rides with a completion."""
    claimed = store.claim("w", 30, 3, retention_ms=RET)
    assert claimed is not None
    params = _claim_params("w2", claimed.started_at or 0, 2**40, 3)
    with store.engine.connect() as conn:
        batch = Batch(conn)
        batch.add(CLAIM, params)
        queue_finish(
            batch,
            claimed,
            JobStatus.COMPLETED,
            claimed.started_at or 0,
            result={"v": 1},
            error=None,
            retention_ms=RET,
            claim=params,
        )
        alone, with_finish = batch.queue
    return {
        "claim": _pg_rows_read(store, alone.sql, alone.values),
        "complete_and_claim": _pg_rows_read(store, with_finish.sql, with_finish.values),
    }


def _sqlite_claim_steps(store: SqlJobStore, path: Path) -> int:
    """Virtual machine instructions (in thousands) of one claim on the SQLite file."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    con = sqlite3.connect(path)
    try:
        # the claim's own statement, taken from the store as it runs it
        seen: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement:
                seen.append((statement, params))

        event.listen(store.engine, "before_cursor_execute", record)
        try:
            assert store.claim("w", 30, 3, retention_ms=RET) is not None
        finally:
            event.remove(store.engine, "before_cursor_execute", record)
        ((statement, params),) = seen
        con.set_progress_handler(count, 1000)
        con.execute(statement, params).fetchall()
    finally:
        con.close()
    return steps[0]


def test_a_claim_reads_the_head_of_the_queue_however_long_it_is(
    db_url: str, tmp_path: Path
) -> None:
    """A claim with 3,000 jobs waiting does the work of one with 30: it walks the queue's
    index to its head (the oldest pending job, the oldest expired lease), whatever
    PostgreSQL's statistics say of the queue. It read every waiting job and sorted
    them, when one OR of the two kinds of runnable job kept the planner off the
    index: with the table never analyzed, and with it analyzed while the queue was
    short (a deployment's usual state before a burst)."""
    store = open_store(Settings(data_dir=tmp_path / "data", database_url=db_url))
    try:
        if store.is_sqlite:
            _add_pending(store, 30, start=1)
            short = _sqlite_claim_steps(store, tmp_path / "store.db")
            _add_pending(store, BACKLOG, start=100)
            long = _sqlite_claim_steps(store, tmp_path / "store.db")
            # thousands of VM steps: the walk to the head, not a pass over the queue
            assert long <= short + 2, (short, long)
            return
        _add_pending(store, BACKLOG, start=1)  # never analyzed
        fresh = _pg_claim_rows(store)
        with store.engine.connect() as conn:  # analyzed with a short queue, then a burst
            conn.execute(text("DELETE FROM jobs"))
            conn.commit()
        _add_pending(store, 5, start=1)
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE jobs"))
        _add_pending(store, BACKLOG, start=100)
        analyzed = _pg_claim_rows(store)
        for case, rows in (("never analyzed", fresh), ("analyzed short", analyzed)):
            for statement, n in rows.items():
                assert n <= ROWS_PER_CLAIM, (case, statement, n)
    finally:
        store.engine.dispose()


def test_the_job_paths_statements_are_parsed_once_by_psycopg(tmp_path: Path) -> None:
    """psycopg caches the parse of a query (its %(name)s placeholders into $n) only
    for a query of at most MAX_CACHED_STATEMENT_LENGTH characters; a longer one is
    parsed with regular expressions on every execution, ~400 us of the worker's CPU
    for the completion that carries the next claim. Every statement a submit, a
    claim, a heartbeat, a completion and a status poll send stays under it."""
    from psycopg import _queries

    limit = _queries.MAX_CACHED_STATEMENT_LENGTH
    sent: list[str] = []
    real = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query if isinstance(query, str) else bytes(query).decode())
        return real(self, query, *args, **kwargs)

    for url in pg_database():
        store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(psycopg.Cursor, "execute", execute)
                for n in range(3):
                    store.create_job("k", "text-to-video", {"n": n})
                claimed = store.claim("w", 30, 3, retention_ms=RET)
                assert claimed is not None
                assert store.heartbeat(claimed.id, "w", 30)
                assert store.view(claimed.id) is not None
                done, nxt = store.complete_and_claim(
                    claimed, "w", RET, result={"v": 1}, lease_seconds=30, max_attempts=3
                )
                assert done and nxt is not None
        finally:
            store.engine.dispose()
    assert len(sent) >= 7, sent
    longest = max(sent, key=len)
    assert len(longest) <= limit, (len(longest), longest[:300])


def test_an_idle_claim_reads_no_dead_entries_after_churn_on_postgresql(tmp_path: Path) -> None:
    """Every job leaves dead index entries behind it (its pending and processing row
    versions) until autovacuum comes round, after a fifth of a big table has changed.
    An idle claim (what every idle worker runs per poll) walks the queue's index in
    order and marks what it passes dead; a bitmap scan, which the claim's plan was
    with its statuses bound as parameters, returns every one of them on every poll
    (bench/README.md: 4,000 rows per idle claim after 4,000 jobs). The table is
    analyzed with a short queue, as autovacuum leaves a deployment's."""
    for url in pg_database():
        store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            _add_pending(store, 5, start=1)
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE jobs"))
            _add_pending(store, 2000, start=100)
            for status in (JobStatus.PROCESSING, JobStatus.COMPLETED):  # 2,000 jobs' churn
                with store.engine.begin() as conn:
                    conn.execute(jobs.update().values(status=status.value, lease_expires_at=0))
            with store.engine.connect() as conn:
                batch = Batch(conn)
                batch.add(CLAIM, _claim_params("w", 1, 2**40, 3))
                (idle,) = batch.queue
            assert _pg_rows_read(store, idle.sql, idle.values) <= ROWS_PER_CLAIM
        finally:
            store.engine.dispose()
