"""The doorbell on each store: a ring wakes a waiting listener at once, silence times out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ltxserve.jobs.lifecycle.doorbell import Silent
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import JobStore

from .conftest import pg_database


def test_ring_wakes_a_waiting_listener(store: JobStore, tmp_path: Path) -> None:
    data = tmp_path / "data"
    ringer = store.doorbell(data)
    ringer.ring()  # nobody listening yet: dropped, no error
    listener = store.doorbell(data)
    try:
        assert not isinstance(listener, Silent)
        listener.wait(0.05)  # set up (open the FIFO / LISTEN)
        started = time.monotonic()
        assert listener.wait(0.3) is False
        assert time.monotonic() - started >= 0.25

        threading.Timer(0.3, ringer.ring).start()
        started = time.monotonic()
        assert listener.wait(10) is True
        assert 0.25 <= time.monotonic() - started < 2.0

        for _ in range(3):  # several rings wake it (at least) once, then it is quiet again
            ringer.ring()
        assert listener.wait(2) is True
        quiet = [listener.wait(0.3) for _ in range(3)]
        assert quiet[-1] is False and quiet.count(True) <= 1  # a late NOTIFY may wake it once
    finally:
        listener.close()
        ringer.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database(label="herd")


def test_a_job_wakes_at_most_two_of_many_idle_workers(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL: one ring, one leader answering it, one successor taking over; the
    other idle workers stay asleep on the leader lock (no thundering herd). Workers
    here are threads running the real claim (JobManager.claim, with its doorbell
    hooks) and the real idle loop's shape: wait in slices, claim after a ring."""
    from ltxserve.config import Settings
    from ltxserve.jobs.lifecycle.manager import JobManager
    from ltxserve.jobs.store.db import open_store
    from ltxserve.storage.local import LocalBlobStore

    s = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    store = open_store(s)
    workers, jobs = 5, 12
    claims = [0] * workers
    taken: dict[str, float] = {}
    stop = threading.Event()
    managers = [
        JobManager(s, store, LocalBlobStore(s.blob_dir), doorbell=store.doorbell(s.data_dir))
        for _ in range(workers)
    ]

    def work(i: int) -> None:
        manager = managers[i]
        while not stop.is_set():
            claims[i] += 1
            job = manager.claim(f"w{i}")
            if job is not None:
                taken[job.id] = time.monotonic()
                continue  # "runs" it at once, then claims again, as Worker.run does
            deadline = time.monotonic() + 30  # no poll in this test: rings only
            while not stop.is_set() and time.monotonic() < deadline:
                if manager.wait_for_work(0.25):
                    break

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # every worker idle: one leads, the others queue on its lock
        idle_claims = sum(claims)
        latency = []
        for _ in range(jobs):
            submitted = time.monotonic()
            job = store.create_job("k", "text-to-video", {"prompt": "x"})  # rings
            deadline = submitted + 5
            while job.id not in taken and time.monotonic() < deadline:
                time.sleep(0.002)
            assert job.id in taken, "a ring woke no worker"
            latency.append(taken[job.id] - submitted)
            time.sleep(0.1)  # the successor settles as leader before the next job
        woken = sum(claims) - idle_claims
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for m in managers:
            m.close()
        store.engine.dispose()
    # each job: the leader's claim, its next claim once "done" (empty), the
    # successor's one claim; every idle worker woken would be `workers` per job
    assert woken <= 4 * jobs, (woken, claims)
    assert sorted(latency)[jobs // 2] < 0.2, latency


def test_an_idle_worker_that_does_not_lead_waits_without_an_error(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: a worker that is not the leader waits for the leader lock in
    slices, and a slice that ends without the lock is caught on the server: no
    ErrorResponse on the wire (libpq's own trace), so nothing in PostgreSQL's log.
    Raised to the client, it was an ERROR in the log four times a second for every
    idle worker but the leader."""
    from sqlalchemy import create_engine

    from ltxserve.jobs.lifecycle.doorbell import PgDoorbell

    engine = create_engine(pg_url)
    leader, other = PgDoorbell(engine), PgDoorbell(engine)
    trace = tmp_path / "wire.trace"
    try:
        leader.wait(0.05)
        other.wait(0.05)  # connected; the lock is the leader's
        with trace.open("w") as sink:
            other._conn.pgconn.trace(sink.fileno())
            started = time.monotonic()
            assert [other.wait(0.2) for _ in range(3)] == [False, False, False]
            assert time.monotonic() - started >= 0.55  # each waited its slice for the lock
            other._conn.pgconn.untrace()
        received = [line for line in trace.read_text().splitlines() if "\tB\t" in line]
        assert received and not [line for line in received if "ErrorResponse" in line]
        leader.after_claim(True)  # steps down: the next wait takes the lock at once
        started = time.monotonic()
        other.wait(0.2)
        assert other._leading and time.monotonic() - started < 0.5
    finally:
        leader.close()
        other.close()
        engine.dispose()


def test_a_leader_works_through_a_short_job_and_hands_over_a_long_one(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a leader whose claim took a job that rang keeps the lead while it
    works; a claim that left two or more jobs waiting hands the lead over at once
    when, at the leader's pace per job, they would wait past LEAD_SECONDS (a backlog
    wants more workers), and so does a job that runs past LEAD_SECONDS (the real
    Worker, with a scripted runner). Rings are counted per job: one heard after the
    claim is its job's, and one heard for a job left waiting counts at the claim that
    takes it."""
    from sqlalchemy import create_engine

    from ltxserve.config import Settings
    from ltxserve.jobs.lifecycle import doorbell
    from ltxserve.jobs.lifecycle.doorbell import PgDoorbell
    from ltxserve.jobs.lifecycle.manager import JobManager
    from ltxserve.jobs.store.db import open_store
    from ltxserve.runner import RunJob
    from ltxserve.storage.local import LocalBlobStore

    from .test_manager import _done, _worker

    s = Settings(data_dir=tmp_path / "data", database_url=pg_url, max_unfinished_per_key=0)
    s.ensure_dirs()
    store = open_store(s)
    engine = create_engine(pg_url)
    other = PgDoorbell(engine)
    m = JobManager(s, store, LocalBlobStore(s.blob_dir), doorbell=store.doorbell(s.data_dir))
    lead = m.doorbell
    assert isinstance(lead, PgDoorbell)

    def next_leader() -> bool:
        other.wait(0.3)
        return other._leading

    during: list[bool] = []

    def slow(run: RunJob) -> list[Any]:  # silence for a while; who leads meanwhile
        return [lambda: time.sleep(0.03), lambda: during.append(next_leader())] + _done(run)

    try:
        warm = store.create_job("k", "text-to-video", {"prompt": "first imports"})
        w = _worker(m, _done)
        w.process(m.claim(w.owner))  # type: ignore[arg-type]
        assert m.job(warm.id).status == JobStatus.COMPLETED  # type: ignore[union-attr]
        m.wait_for_work(0.05)
        assert lead._leading and not next_leader()  # the other queues on the lock

        store.create_job("k", "text-to-video", {"prompt": "short"})  # rings once
        assert m.wait_for_work(5)
        w = _worker(m, _done)
        job = m.claim(w.owner)
        assert job is not None and lead._leading and not next_leader()
        w.process(job)  # completes and claims again (nothing left): still leading
        assert m.job(job.id).status == JobStatus.COMPLETED  # type: ignore[union-attr]
        assert lead._leading and not next_leader()

        store.create_job("k", "text-to-video", {"prompt": "long"})
        assert m.wait_for_work(5)
        w = _worker(m, slow)
        job = m.claim(w.owner)
        assert job is not None and lead._leading
        w.process(job)  # ran past LEAD_SECONDS: handed over while it ran
        assert during == [True] and not lead._leading

        for n in range(3):  # a backlog: three rings heard, one job taken, two left
            store.create_job("k", "text-to-video", {"prompt": f"backlog {n}"})
        time.sleep(0.2)
        other.before_claim()
        other.after_claim(True)
        assert not other._leading
        m.wait_for_work(0.3)
        assert lead._leading

        for n in range(2):  # one job left waiting: the leader's own next claim takes it
            store.create_job("k", "text-to-video", {"prompt": f"one more {n}"})
        time.sleep(0.2)
        lead.before_claim()
        lead.after_claim(True)
        assert lead._leading and not next_leader()
        lead.before_claim()  # ...and its ring was heard already: no backlog
        lead.after_claim(True)
        assert lead._leading and not next_leader()

        lead.before_claim()  # a ring that comes after the claim saw the job's row
        store.create_job("k", "text-to-video", {"prompt": "late ring"})
        time.sleep(0.2)
        lead.after_claim(True)
        assert lead._leading and not next_leader()

        for round_ in range(2):  # jobs come faster than one leader takes them
            for n in range(2):
                store.create_job("k", "text-to-video", {"prompt": f"stream {round_} {n}"})
            time.sleep(0.2)
            lead.before_claim()
            lead.after_claim(True)
            # then two are left waiting, which at 0.2 s a job would wait past LEAD_SECONDS
            assert lead._leading is (round_ == 0)

        # a leader fast enough for the jobs it left waiting keeps the lead: here a job
        # costs it ~0.2 s, against a LEAD_SECONDS of 1 s
        monkeypatch.setattr(doorbell, "LEAD_SECONDS", 1.0)
        assert lead.wait(0.3) and lead._leading  # leads again (the lock was free)
        for batch, keeps in ((1, True), (3, True), (5, False)):
            for n in range(batch):
                store.create_job("k", "text-to-video", {"prompt": f"fast {batch} {n}"})
            time.sleep(0.2)
            lead.before_claim()
            lead.after_claim(True)
            assert lead._leading is keeps  # 0, 2 (0.4 s), then 6 left waiting (1.2 s)
    finally:
        other.close()
        m.close()
        store.engine.dispose()
        engine.dispose()
