"""The store contract, run against every implementation: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event

from ltxserve.config import Settings
from ltxserve.jobs.lifecycle.states import InvalidTransition, JobStatus, check_transition
from ltxserve.jobs.store.base import JobStore
from ltxserve.jobs.store.batch import Batch
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.sql import SqlJobStore
from ltxserve.jobs.store.tables import metadata
from tests.store.conftest import pg_database

RET = 60_000  # retention for jobs a claim gives up on


def test_migrations_produce_the_declared_schema(sql_store: SqlJobStore) -> None:
    with sql_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_state_machine_edges() -> None:
    check_transition("pending", "processing")
    check_transition("processing", "completed")
    check_transition("processing", "pending")
    for old, new in [
        ("completed", "failed"),
        ("failed", "processing"),
        ("pending", "completed"),
        ("completed", "pending"),
    ]:
        with pytest.raises(InvalidTransition):
            check_transition(old, new)


def test_claim_heartbeat_finish(store: JobStore) -> None:
    job = store.create_job("k1", "text-to-video", {"prompt": "x"})
    assert job.status == JobStatus.PENDING and job.attempts == 0
    claimed = store.claim("w1", lease_seconds=30, max_attempts=3, retention_ms=RET)
    assert claimed is not None and claimed.id == job.id
    assert claimed.status == JobStatus.PROCESSING and claimed.attempts == 1
    assert store.claim("w2", 30, 3, retention_ms=RET) is None  # nothing else runnable
    assert store.heartbeat(job.id, "w1", 30, progress=0.5)
    assert not store.heartbeat(job.id, "w2", 30)  # not w2's job
    assert not store.finish(job.id, "w2", JobStatus.COMPLETED, 1000)
    assert store.finish(job.id, "w1", JobStatus.COMPLETED, 1000, result={"video_url": {}})
    done = store.get(job.id)
    assert done is not None and done.status == JobStatus.COMPLETED and done.progress == 1.0
    assert done.expires_at == done.completed_at + 1000  # type: ignore[operator]
    assert not store.finish(job.id, "w1", JobStatus.FAILED, 1000)  # terminal stays terminal


def test_expired_lease_is_reclaimed_then_given_up(store: JobStore) -> None:
    job = store.create_job("k1", "text-to-video", {})
    assert store.claim("w1", lease_seconds=0.05, max_attempts=2, retention_ms=RET) is not None
    time.sleep(0.1)
    again = store.claim("w2", lease_seconds=0.05, max_attempts=2, retention_ms=RET)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not store.heartbeat(job.id, "w1", 30)  # w1 lost it
    time.sleep(0.1)
    assert store.claim("w3", 30, max_attempts=2, retention_ms=RET) is None
    failed = store.get(job.id)
    assert failed is not None and failed.status == JobStatus.FAILED
    assert failed.error_type == "api_error"
    assert failed.expires_at == failed.completed_at + RET  # type: ignore[operator]


def test_a_completion_past_its_lease_is_not_claimed_again(store: JobStore) -> None:
    """A worker that finishes after its lease ran out, before anyone reclaimed the job:
    its completion wins (nobody took the job over), and the claim that rides with it
    does not take that same job back (PostgreSQL: in the one statement of both, its
    row would be updated twice, and only one of the two would stay)."""
    job = store.create_job("k", "text-to-video", {})
    claimed = store.claim("w1", lease_seconds=0.05, max_attempts=3, retention_ms=RET)
    assert claimed is not None
    time.sleep(0.1)
    done, nxt = store.complete_and_claim(
        claimed, "w1", RET, result={"v": 1}, lease_seconds=30, max_attempts=3
    )
    assert done and nxt is None
    ended = store.get(job.id)
    assert ended is not None and (ended.status, ended.result, ended.lease_owner) == (
        JobStatus.COMPLETED,
        {"v": 1},
        None,
    )


def test_complete_and_claim_ends_the_job_then_leases_the_next(store: JobStore) -> None:
    """A worker's hot path: its job completed and the next runnable one leased to it,
    in order (the claim never takes the job just ended); a lost job's completion is
    refused and the claim still runs; an exhausted candidate is failed and the search
    goes on; an empty queue answers no job."""
    first = store.create_job("k", "text-to-video", {"n": 1})
    claimed = store.claim("w1", lease_seconds=30, max_attempts=3, retention_ms=RET)
    assert claimed is not None and claimed.id == first.id
    second = store.create_job("k", "text-to-video", {"n": 2})
    done, nxt = store.complete_and_claim(
        claimed, "w1", RET, result={"v": 1}, lease_seconds=30, max_attempts=3
    )
    assert done and nxt is not None and nxt.id == second.id
    assert (nxt.status, nxt.lease_owner, nxt.attempts) == (JobStatus.PROCESSING, "w1", 1)
    ended = store.get(first.id)
    assert ended is not None and (ended.status, ended.result) == (JobStatus.COMPLETED, {"v": 1})
    leased = store.get(second.id)
    assert leased is not None and (leased.status, leased.lease_owner) == (
        JobStatus.PROCESSING,
        "w1",
    )
    # w1 lost `second` (released: back in the queue); its completion is refused, and
    # the claim that rides with it takes the job again, as a new attempt
    assert store.release(second.id, "w1")
    done, again = store.complete_and_claim(
        nxt, "w1", RET, result={"v": 2}, lease_seconds=30, max_attempts=3
    )
    assert not done and again is not None and (again.id, again.attempts) == (second.id, 2)
    # a candidate whose attempts are used up (w2 vanished with it) is failed, and the
    # next one is taken
    third = store.create_job("k", "text-to-video", {"n": 3})
    assert store.claim("w2", lease_seconds=0.05, max_attempts=1, retention_ms=RET) is not None
    # created_at is in ms and the claim takes the oldest; in the same ms as `third` the
    # two would tie, and the claim could take `fourth` first (1 run in 4 on a fast CPU)
    time.sleep(0.002)
    fourth = store.create_job("k", "text-to-video", {"n": 4})
    time.sleep(0.1)
    done, last = store.complete_and_claim(
        again, "w1", RET, result={"v": 3}, lease_seconds=30, max_attempts=1
    )
    assert done and last is not None and last.id == fourth.id
    lost = store.get(third.id)
    assert lost is not None and (lost.status, lost.error_type) == (JobStatus.FAILED, "api_error")
    done, none = store.complete_and_claim(
        last, "w1", RET, result={"v": 4}, lease_seconds=30, max_attempts=3
    )
    assert done and none is None
    assert store.get(fourth.id).status == JobStatus.COMPLETED  # type: ignore[union-attr]


def test_release_returns_job_to_queue(store: JobStore) -> None:
    job = store.create_job("k1", "retake", {})
    store.claim("w1", 30, 3, retention_ms=RET)
    assert store.release(job.id, "w1")
    assert store.get(job.id).status == JobStatus.PENDING  # type: ignore[union-attr]
    assert store.claim("w2", 30, 3, retention_ms=RET).attempts == 2  # type: ignore[union-attr]


def test_fail_exhausted_without_workers(store: JobStore) -> None:
    job = store.create_job("k1", "extend", {})
    store.claim("w1", lease_seconds=0.01, max_attempts=1, retention_ms=RET)
    time.sleep(0.05)
    assert store.fail_exhausted(max_attempts=1, retention_ms=1000) == 1
    assert store.get(job.id).status == JobStatus.FAILED  # type: ignore[union-attr]


def test_concurrent_claims_never_share_a_job(store: JobStore) -> None:
    ids = {store.create_job("k", "text-to-video", {"n": i}).id for i in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name, 30, 3, retention_ms=RET)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_retention_listing_and_delete(store: JobStore) -> None:
    job = store.create_job("k", "text-to-video", {})
    store.claim("w", 30, 3, retention_ms=RET)
    store.finish(job.id, "w", JobStatus.COMPLETED, retention_ms=10, result={})
    time.sleep(0.05)
    assert job.id in store.expired_ids()
    assert store.delete_jobs([job.id]) == 1
    assert store.get(job.id) is None


def test_keys(store: JobStore) -> None:
    store.add_key("id1", "ci", "h" * 64, "ltxsk_abc")
    assert store.key_by_hash("h" * 64)["name"] == "ci"  # type: ignore[index]
    assert store.revoke_key("ltxsk_abc") == 1
    assert store.key_by_hash("h" * 64)["revoked_at"] is not None  # type: ignore[index]
    assert store.revoke_key("id1") == 0


def test_a_workers_claim_and_finish_are_one_round_trip_each_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sends its one statement with the COMMIT in one pipeline (jobs/store/
    pg_claim.py, pg_finish.py): nothing else reaches the driver, and the job ends as
    it would have through Core (completed, its result, the lease gone). SQLite has
    no round trip to save."""
    for url in pg_database():
        sql_store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            _one_round_trip_each(sql_store, monkeypatch)
        finally:
            sql_store.engine.dispose()


@contextmanager
def _wire(sql_store: SqlJobStore, tmp_path: Path) -> Iterator[Callable[[], list[str]]]:
    """libpq's own trace of what the store's new connections send; the function it
    yields answers the statements sent so far (Parse or Query messages)."""
    sql_store.engine.dispose()  # new connections, traced from their first byte
    trace = tmp_path / "wire.trace"
    with trace.open("w") as sink:

        def sent() -> list[str]:
            sink.flush()
            lines = [line for line in trace.read_text().splitlines() if "\tF\t" in line]
            return [line for line in lines if "\tQuery\t" in line or "\tParse\t" in line]

        @event.listens_for(sql_store.engine, "connect")
        def _trace(dbapi_conn: object, _record: object) -> None:
            dbapi_conn.pgconn.trace(sink.fileno())  # type: ignore[attr-defined]

        yield sent
        event.remove(sql_store.engine, "connect", _trace)


def _syncs(tmp_path: Path) -> int:
    """Round trips in ``_wire``'s trace: the Sync messages the client sent."""
    wire = (tmp_path / "wire.trace").read_text().splitlines()
    return sum(1 for line in wire if "\tF\t" in line and "\tSync" in line)


def _out_of_autocommit(sql_store: SqlJobStore) -> None:
    assert sql_store.engine.pool.checkedin() == 1
    with sql_store.engine.connect() as conn:
        assert conn.connection.driver_connection.autocommit is False  # type: ignore[union-attr]


def test_the_status_poll_is_one_statement_on_postgresql(tmp_path: Path) -> None:
    """The poll's read (``view``) and the key lookup run in autocommit: libpq's own
    trace of the wire shows each sends its SELECT and nothing else, no BEGIN and no
    ROLLBACK, and a connection comes back to the pool out of autocommit, so a write
    that follows on it is still one transaction."""
    for url in pg_database():
        sql_store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            job = sql_store.create_job("k", "text-to-video", {"prompt": "p"}, job_id="j1")
            with _wire(sql_store, tmp_path) as sent:
                view = sql_store.view(job.id)
                assert sql_store.key_by_hash("nope") is None
                queries = sent()
                # the write after the reads, on the same (only) pooled connection
                sql_store.create_job("k", "text-to-video", {"prompt": "p"}, job_id="j2")
            assert view is not None and view.status == JobStatus.PENDING
            assert len(queries) == 2, queries
            assert not any("BEGIN" in q or "ROLLBACK" in q for q in queries), queries
            _out_of_autocommit(sql_store)
        finally:
            sql_store.engine.dispose()


def test_the_claim_and_the_finish_are_one_statement_each_on_postgresql(
    tmp_path: Path,
) -> None:
    """A worker's claim and its finish are transactions of one statement, sent alone
    in autocommit (Batch._run_implicit): on the wire each is one Parse, with no BEGIN
    and no COMMIT, the claim's job is leased, the finish lands, and the connection
    goes back to the pool out of autocommit."""
    for url in pg_database():
        sql_store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            sql_store.create_job("k", "text-to-video", {"prompt": "p"}, job_id="j1")
            with _wire(sql_store, tmp_path) as sent:
                claimed = sql_store.claim("w1", lease_seconds=30, max_attempts=3, retention_ms=RET)
                assert claimed is not None and claimed.lease_owner == "w1"
                assert sql_store.finish(
                    "j1", "w1", JobStatus.COMPLETED, RET, result={"v": 1}, claimed=claimed
                )
                assert (
                    sql_store.claim("w1", lease_seconds=30, max_attempts=3, retention_ms=RET)
                    is None
                )
                queries = sent()
            assert len(queries) == 3, queries
            assert not any("BEGIN" in q or "COMMIT" in q for q in queries), queries
            job = sql_store.get("j1")
            assert job is not None and (job.status, job.result) == (JobStatus.COMPLETED, {"v": 1})
            _out_of_autocommit(sql_store)
        finally:
            sql_store.engine.dispose()


def test_a_completion_and_the_next_claim_are_one_round_trip_on_postgresql(
    tmp_path: Path,
) -> None:
    """complete_and_claim on PostgreSQL: the finish and the claim are one statement in
    autocommit, one Sync (one round trip, one implicit transaction), with no BEGIN
    and no COMMIT; an empty queue costs the same one round trip, and the connection
    goes back to the pool out of autocommit."""
    for url in pg_database():
        sql_store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            for n in (1, 2):
                sql_store.create_job("k", "text-to-video", {"n": n}, job_id=f"j{n}")
            claimed = sql_store.claim("w1", lease_seconds=30, max_attempts=3, retention_ms=RET)
            assert claimed is not None and claimed.id == "j1"
            with _wire(sql_store, tmp_path) as sent:
                done, nxt = sql_store.complete_and_claim(
                    claimed, "w1", RET, result={"v": 1}, lease_seconds=30, max_attempts=3
                )
                assert done and nxt is not None and nxt.id == "j2"
                done, none = sql_store.complete_and_claim(
                    nxt, "w1", RET, result={"v": 2}, lease_seconds=30, max_attempts=3
                )
                assert done and none is None
                queries = sent()
            assert _syncs(tmp_path) == 2, (tmp_path / "wire.trace").read_text()
            assert len(queries) == 2, queries  # one statement each (a Parse, unprepared yet)
            assert not any("BEGIN" in q or "COMMIT" in q for q in queries), queries
            for job_id in ("j1", "j2"):
                job = sql_store.get(job_id)
                assert job is not None and job.status == JobStatus.COMPLETED
            _out_of_autocommit(sql_store)
        finally:
            sql_store.engine.dispose()


def test_a_submit_that_no_limit_applies_to_is_one_round_trip_on_postgresql(
    tmp_path: Path,
) -> None:
    """With every server-wide limit off, a submit reads nothing first: it is one
    statement in autocommit (one Parse, one Sync, no BEGIN, no COMMIT), the INSERT,
    which checks the key's own limits and rings the doorbell itself. A key with a
    limit of its own fails the INSERT on the server, nothing of the try commits, and
    the submit runs again with the read, which refuses past the key's limit."""
    from ltxserve.errors import ConcurrencyLimitError
    from ltxserve.jobs.lifecycle.limits import Limits

    for url in pg_database():
        settings = Settings(data_dir=tmp_path / "data", database_url=url, max_unfinished_per_key=0)
        sql_store = open_store(settings)
        admit = Limits(settings)
        try:
            sql_store.set_key_limits("capped", max_unfinished=1)
            with _wire(sql_store, tmp_path) as sent:
                sql_store.create_job("free", "text-to-video", {"n": 1}, admit=admit)
                queries = sent()
            assert _syncs(tmp_path) == 1, (tmp_path / "wire.trace").read_text()
            assert len(queries) == 1 and "INSERT INTO jobs" in queries[0], queries
            sql_store.create_job("capped", "text-to-video", {"n": 2}, admit=admit, job_id="c1")
            with pytest.raises(ConcurrencyLimitError):
                sql_store.create_job("capped", "text-to-video", {"n": 3}, admit=admit, job_id="c2")
            assert sql_store.get("c1") is not None and sql_store.get("c2") is None
            _out_of_autocommit(sql_store)
        finally:
            sql_store.engine.dispose()


def _one_round_trip_each(sql_store: SqlJobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    pipelines: list[tuple[int, bool]] = []  # (statements, commit) of each pipeline
    run_pg = Batch._run_pg

    def spy(self: Batch, queue: list[object], commit: bool) -> object:
        pipelines.append((len(queue), commit))
        return run_pg(self, queue, commit)  # type: ignore[arg-type]

    sql_store.create_job("k", "text-to-video", {"prompt": "p"}, job_id="j1")
    core: list[str] = []
    monkeypatch.setattr(Batch, "_run_pg", spy)
    event.listen(sql_store.engine, "before_cursor_execute", lambda *a: core.append(a[2]))
    claimed = sql_store.claim("w1", lease_seconds=30, max_attempts=3, retention_ms=RET)
    assert claimed is not None and claimed.id == "j1"
    assert sql_store.finish(
        "j1", "w1", JobStatus.COMPLETED, RET, result={"video": "v"}, claimed=claimed
    )
    assert pipelines == [(1, True), (1, True)]
    assert core == []  # no statement through Core: no BEGIN, no separate COMMIT
    job = sql_store.get("j1")
    assert job is not None
    assert (job.status, job.result, job.lease_owner, job.progress) == (
        JobStatus.COMPLETED,
        {"video": "v"},
        None,
        1.0,
    )
