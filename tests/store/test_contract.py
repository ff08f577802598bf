"""More of the JobStore contract, the same functions over memory, SQLite and PostgreSQL:
uploads, admission inside the insert's transaction, compare-and-set, and copies."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ltxserve.errors import ConcurrencyLimitError
from ltxserve.jobs.lifecycle.admission import MaxUnfinishedPerKey
from ltxserve.jobs.lifecycle.states import InvalidTransition, JobStatus
from ltxserve.jobs.store.base import AdmissionView, JobStore, Upload, now_ms

RET = 60_000


def _upload(upload_id: str, key: str = "k1", url_ms: int = 60_000) -> Upload:
    now = now_ms()
    return Upload(
        id=upload_id,
        api_key_id=key,
        created_at=now,
        url_expires_at=now + url_ms,
        expires_at=now + 2 * url_ms,
        completed_at=None,
        size=None,
        content_type=None,
    )


def test_uploads_one_put_then_expiry(store: JobStore) -> None:
    up = _upload("a" * 32)
    store.add_upload(up)
    assert store.get_upload(up.id) == up
    assert store.get_upload("not-an-id") is None
    assert store.get_upload("b" * 32) is None
    assert store.complete_upload(up.id, 123, "video/mp4")
    assert not store.complete_upload(up.id, 456, "video/mp4")  # one PUT per URL
    done = store.get_upload(up.id)
    assert done is not None and done.size == 123 and done.content_type == "video/mp4"
    assert done.completed_at is not None
    late = _upload("c" * 32, url_ms=1)
    store.add_upload(late)
    time.sleep(0.01)
    assert not store.complete_upload(late.id, 1, None)  # its URL expired
    time.sleep(0.01)
    assert store.expired_upload_ids() == [late.id]
    assert store.delete_uploads([late.id]) == 1
    assert store.get_upload(late.id) is None
    assert store.delete_uploads([]) == 0


def test_admission_refusal_leaves_no_job(store: JobStore) -> None:
    seen: list[int] = []

    def admit(view: AdmissionView, key: str, endpoint: str, request: dict[str, Any]) -> None:
        seen.append(view.unfinished_jobs(key))
        if request.get("refuse"):
            raise ConcurrencyLimitError("no", retry_after=1)

    a = store.create_job("k1", "text-to-video", {}, admit=admit)
    store.create_job("k2", "text-to-video", {}, admit=admit)
    with pytest.raises(ConcurrencyLimitError):
        store.create_job("k1", "text-to-video", {"refuse": True}, job_id="refused", admit=admit)
    assert store.get("refused") is None
    assert store.claim("w", 30, 3, retention_ms=RET) is not None  # a: processing still counts
    store.create_job("k1", "text-to-video", {}, admit=admit)
    assert store.finish(a.id, "w", JobStatus.COMPLETED, RET, result={})
    store.create_job("k1", "text-to-video", {}, admit=admit)  # finished jobs do not count
    assert seen == [0, 0, 1, 1, 1]


def test_admission_limit_holds_under_concurrent_submits(store: JobStore) -> None:
    """Eight threads (each its own connection) submit for one key at once, with a limit
    of 3: exactly three jobs, because the count and the insert are one transaction."""
    limit, tries = 3, 8
    admit = MaxUnfinishedPerKey(limit)
    barrier = threading.Barrier(tries)
    outcomes: list[str] = []

    def submit(n: int) -> None:
        barrier.wait()
        try:
            store.create_job("k1", "text-to-video", {"n": n}, admit=admit)
            outcomes.append("admitted")
        except ConcurrencyLimitError:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(tries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted"] * limit + ["refused"] * (tries - limit)
    store.create_job("k2", "text-to-video", {}, admit=admit)  # another key is not limited


def test_finish_is_compare_and_set(store: JobStore) -> None:
    job = store.create_job("k1", "text-to-video", {})
    with pytest.raises(InvalidTransition):  # pending cannot complete
        store.finish(job.id, None, JobStatus.COMPLETED, RET, result={})
    assert store.get(job.id).status == JobStatus.PENDING  # type: ignore[union-attr]
    store.claim("w1", 30, 3, retention_ms=RET)
    assert store.release(job.id, "w1")
    assert not store.release(job.id, "w1")  # released once
    assert not store.finish(job.id, "w1", JobStatus.COMPLETED, RET)  # no longer w1's
    store.claim("w2", 30, 3, retention_ms=RET)
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def finish(status: JobStatus) -> None:
        barrier.wait()
        wins.append(store.finish(job.id, None, status, RET, error=("api_error", "x")))

    threads = [
        threading.Thread(target=finish, args=(s,))
        for s in (JobStatus.FAILED, JobStatus.COMPLETED) * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]  # one racer wins, once
    assert store.get(job.id).terminal  # type: ignore[union-attr]


def test_views_and_copies(store: JobStore) -> None:
    request = {"prompt": "x", "nested": {"a": [1, 2]}}
    job = store.create_job("k1", "image-to-video", request)
    claimed = store.claim("w", 30, 3, retention_ms=RET)
    assert claimed is not None and claimed.request == request
    claimed.request["nested"]["a"].append(3)  # a caller's copy, not the stored row
    assert store.get(job.id).request == {"prompt": "x", "nested": {"a": [1, 2]}}  # type: ignore[union-attr]
    assert store.heartbeat(job.id, "w", 30, progress=0.25)
    view = store.view(job.id)
    assert view is not None and not hasattr(view, "request")
    assert view.status == JobStatus.PROCESSING and view.progress == 0.25
    assert view.completed_at is None and view.expires_at is None
    assert store.view("missing") is None and store.get("missing") is None


def test_keys_list_and_revoke_by_prefix(store: JobStore) -> None:
    store.add_key("id1", "one", "1" * 64, "ltxsk_one")
    time.sleep(0.002)
    store.add_key("id2", "two", "2" * 64, "ltxsk_two", simulate="allow")
    assert [k["id"] for k in store.list_keys()] == ["id1", "id2"]
    assert store.key_by_hash("2" * 64)["simulate"] == "allow"  # type: ignore[index]
    assert store.key_by_hash("3" * 64) is None
    assert store.revoke_key("ltxsk_two") == 1
    assert store.revoke_key("id2") == 0
    assert [k["revoked_at"] is None for k in store.list_keys()] == [True, False]
