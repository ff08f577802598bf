"""The job version behind live events, over memory, SQLite and PostgreSQL: every status
change and every progress that moved bumps it, nothing else does; and the change feed
an API process listens on hears each bump (PostgreSQL: NOTIFY at commit; memory:
directly; SQLite: a pacing feed, the API polls ``versions``)."""

from __future__ import annotations

import threading
import time

from ltxserve.jobs.lifecycle.changes import PollFeed
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import JobStore
from ltxserve.jobs.store.sql import SqlJobStore

RET = 60_000


def version(store: JobStore, job_id: str) -> int:
    view = store.view(job_id)
    assert view is not None
    assert store.versions([job_id]) == {job_id: view.version}
    return view.version


def test_version_counts_status_and_progress_changes(store: JobStore) -> None:
    job = store.create_job("k", "text-to-video", {"prompt": "p"})
    assert version(store, job.id) == 0
    claimed = store.claim("w1", 30, 3, retention_ms=RET)
    assert claimed is not None and claimed.version == 1 == version(store, job.id)
    assert store.heartbeat(job.id, "w1", 30)  # lease only
    assert version(store, job.id) == 1
    assert store.heartbeat(job.id, "w1", 30, 0.25)
    assert version(store, job.id) == 2
    assert store.heartbeat(job.id, "w1", 30, 0.25)  # the same progress again
    assert version(store, job.id) == 2
    assert not store.heartbeat(job.id, "w2", 30, 0.5)  # not the owner: nothing written
    assert version(store, job.id) == 2
    assert store.release(job.id, "w1")
    assert version(store, job.id) == 3
    again = store.claim("w2", 30, 3, retention_ms=RET)
    assert again is not None and again.version == 4 == version(store, job.id)
    assert store.finish(job.id, "w2", JobStatus.COMPLETED, RET, result={})
    assert version(store, job.id) == 5
    assert not store.finish(job.id, None, JobStatus.FAILED, RET, error=("api_error", "x"))
    assert version(store, job.id) == 5
    assert store.versions([job.id, "missing"]) == {job.id: 5}
    assert store.versions([]) == {}


def test_change_feed_hears_each_bump(store: JobStore) -> None:
    feed = store.change_feed()
    if isinstance(feed, PollFeed):  # SQLite: nothing to hear; the API polls versions
        assert feed.wait(0.01) is None
        return
    try:
        feed.wait(0.5)  # PostgreSQL: the first wait connects and LISTENs
        job = store.create_job("k", "text-to-video", {"prompt": "p"})
        assert store.claim("w1", 30, 3, retention_ms=RET) is not None
        heard: list[tuple[str, int]] = []
        deadline = time.monotonic() + 5
        while (job.id, 1) not in heard and time.monotonic() < deadline:
            heard += feed.wait(0.5) or []
        assert (job.id, 1) in heard, heard

        def finish_soon() -> None:
            time.sleep(0.2)
            store.finish(job.id, "w1", JobStatus.COMPLETED, RET, result={})

        t = threading.Thread(target=finish_soon)
        t.start()
        started = time.monotonic()
        changes = feed.wait(5)
        t.join()
        assert changes == [(job.id, 2)]
        assert time.monotonic() - started < 2  # woken by the change, not the timeout
    finally:
        feed.close()


def test_many_versions_in_one_call(sql_store: SqlJobStore) -> None:
    ids = [sql_store.create_job("k", "text-to-video", {"p": i}).id for i in range(1203)]
    assert sql_store.versions(ids) == dict.fromkeys(ids, 0)
