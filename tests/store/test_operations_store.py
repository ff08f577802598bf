"""What /readyz and /metrics ask of every store (memory, SQLite, PostgreSQL):
``ping`` and ``count_jobs`` by (status, endpoint), in flight or ended."""

from __future__ import annotations

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import JobStore

RET = 60_000


def test_count_jobs_splits_in_flight_from_ended(store: JobStore) -> None:
    store.ping()
    assert store.count_jobs(True) == {} and store.count_jobs(False) == {}
    t2v = [store.create_job("k", "text-to-video", {"n": i}) for i in range(3)]
    store.create_job("k", "extend", {})
    claimed = store.claim("w", 30, 3, retention_ms=RET)
    assert claimed is not None and claimed.id == t2v[0].id  # oldest first
    assert store.finish(claimed.id, "w", JobStatus.COMPLETED, RET, result={})
    again = store.claim("w", 30, 3, retention_ms=RET)
    assert again is not None
    assert store.finish(again.id, "w", JobStatus.FAILED, RET, error=("api_error", "x"))
    store.claim("w", 30, 3, retention_ms=RET)  # the third text-to-video: processing
    assert store.count_jobs(True) == {
        ("processing", "text-to-video"): 1,
        ("pending", "extend"): 1,
    }
    assert store.count_jobs(False) == {
        ("completed", "text-to-video"): 1,
        ("failed", "text-to-video"): 1,
    }
