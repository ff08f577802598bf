"""The store's half of listing and Idempotency-Key, the same functions over memory,
SQLite and PostgreSQL: keyset pages newest first, filters, retention, other keys;
a key's replay, conflict, expiry, takeover and concurrent duplicates."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import event

from ltxserve.errors import ConcurrencyLimitError, IdempotencyConflictError
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import (
    AdmissionView,
    IdempotencyClaim,
    JobStore,
    ListQuery,
    now_ms,
)
from ltxserve.jobs.store.batch import Batch
from ltxserve.jobs.store.sql import SqlJobStore

RET = 60_000


def _page(store: JobStore, key: str = "k1", **kw: Any) -> list[str]:
    query = ListQuery(api_key_id=key, now=kw.pop("now", now_ms()), limit=kw.pop("limit", 100), **kw)
    return [v.id for v in store.list_jobs(query)]


def _claim(key: str = "idem-1", h: str = "h1", ttl: int = 60_000, api_key: str = "k1") -> Any:
    now = now_ms()
    return IdempotencyClaim(
        api_key_id=api_key, key=key, request_hash=h, now=now, expires_at=now + ttl
    )


def test_list_newest_first_with_keyset_pages(store: JobStore) -> None:
    ids = [f"job-{i:03d}" for i in range(25)]
    for i, job_id in enumerate(ids):
        # several jobs share a millisecond: the id breaks the tie, so none repeats or hides
        store.create_job("k1", "text-to-video" if i % 2 else "retake", {"n": i}, job_id=job_id)
    store.create_job("k2", "text-to-video", {}, job_id="other-key")
    newest_first = sorted(
        ids, key=lambda i: ((j := store.get(i)) is not None and j.created_at, i), reverse=True
    )
    assert _page(store) == newest_first

    seen: list[str] = []
    after = None
    for _ in range(10):  # 4 pages; bounded, so a cursor that does not advance fails fast
        views = store.list_jobs(ListQuery(api_key_id="k1", now=now_ms(), limit=7, after=after))
        seen += [v.id for v in views]
        if len(views) < 7:
            break
        after = (views[-1].created_at, views[-1].id)
    assert seen == newest_first
    assert "other-key" not in seen
    assert _page(store, "k2") == ["other-key"]
    assert _page(store, "nobody") == []


def test_list_filters_and_retention(store: JobStore) -> None:
    a = store.create_job("k1", "text-to-video", {}, job_id="a")
    time.sleep(0.003)  # three distinct creation times
    b = store.create_job("k1", "retake", {}, job_id="b")
    time.sleep(0.003)
    c = store.create_job("k1", "extend", {}, job_id="c")
    claimed = store.claim("w", 30, 3, retention_ms=RET)
    assert claimed is not None and claimed.id == "a"
    assert store.finish("a", "w", JobStatus.COMPLETED, RET, result={})
    assert store.finish("b", None, JobStatus.FAILED, RET, error=("api_error", "x"))

    assert _page(store, endpoints=("retake", "extend")) == ["c", "b"]
    assert _page(store, statuses=(JobStatus.PENDING,)) == ["c"]
    assert _page(store, statuses=(JobStatus.COMPLETED, JobStatus.FAILED)) == ["b", "a"]
    assert _page(store, endpoints=("retake",), statuses=(JobStatus.PENDING,)) == []
    assert _page(store, created_after=b.created_at - 1) == ["c", "b"]
    assert _page(store, created_before=b.created_at + 1) == ["b", "a"]
    assert _page(store, created_after=a.created_at, created_before=c.created_at) == ["b"]
    views = {v.id: v for v in store.list_jobs(ListQuery(api_key_id="k1", now=now_ms(), limit=9))}
    assert views["a"].status == JobStatus.COMPLETED and views["a"].endpoint == "text-to-video"
    # past retention: no longer listed, even before the sweeper deletes it
    assert _page(store, now=now_ms() + 2 * RET) == ["c"]


def test_idempotency_replays_the_same_job(store: JobStore) -> None:
    first = store.create_job("k1", "text-to-video", {"p": 1}, job_id="j1", idempotency=_claim())
    again = store.create_job("k1", "text-to-video", {"p": 1}, job_id="j2", idempotency=_claim())
    assert again.id == "j1" and again.created_at == first.created_at
    assert store.get("j2") is None  # nothing inserted
    assert _page(store) == ["j1"]
    with pytest.raises(IdempotencyConflictError, match="idem-1"):
        store.create_job("k1", "text-to-video", {"p": 2}, job_id="j3", idempotency=_claim(h="h2"))
    assert store.get("j3") is None
    # keys are per API key: another key's identical key is a job of its own
    other = store.create_job(
        "k2", "text-to-video", {}, job_id="j4", idempotency=_claim(api_key="k2")
    )
    assert other.id == "j4"


def test_a_replay_wins_over_admission_and_a_refusal_records_no_key(store: JobStore) -> None:
    calls: list[str] = []

    def full(view: AdmissionView, key: str, endpoint: str, request: dict[str, Any]) -> None:
        calls.append(key)
        raise ConcurrencyLimitError("full", retry_after=1)

    def admit(view: AdmissionView, key: str, endpoint: str, request: dict[str, Any]) -> None:
        calls.append(key)

    with pytest.raises(ConcurrencyLimitError):
        store.create_job("k1", "text-to-video", {}, job_id="r1", admit=full, idempotency=_claim())
    # the refused submit left no key: its retry is a new job
    job = store.create_job(
        "k1", "text-to-video", {}, job_id="r2", admit=admit, idempotency=_claim()
    )
    assert job.id == "r2" and calls == ["k1", "k1"]
    # and a retry of the admitted one is answered even when the key is now full (on
    # PostgreSQL the key's INSERT is sent with admission's read: the refusal is
    # rolled back and the replay answered; elsewhere admission is not asked at all)
    again = store.create_job(
        "k1", "text-to-video", {}, job_id="r3", admit=full, idempotency=_claim()
    )
    assert again.id == "r2" and store.get("r3") is None


def test_expired_keys_and_keys_of_gone_jobs_start_again(store: JobStore) -> None:
    store.create_job("k1", "text-to-video", {}, job_id="e1", idempotency=_claim(ttl=1))
    late = _claim()
    late = IdempotencyClaim(
        **{**late.__dict__, "now": late.now + 5, "expires_at": late.now + 60_000}
    )
    assert store.create_job("k1", "text-to-video", {}, job_id="e2", idempotency=late).id == "e2"
    # a key whose job's retention ended names nothing any more
    assert store.finish("e2", None, JobStatus.FAILED, 1, error=("api_error", "x"))
    soon = now_ms() + 1_000  # past the job's 1 ms retention, within the key's 60 s
    later = IdempotencyClaim(**{**late.__dict__, "now": soon, "expires_at": soon + 60_000})
    assert store.create_job("k1", "text-to-video", {}, job_id="e3", idempotency=later).id == "e3"
    assert store.delete_jobs(["e3"]) == 1
    assert store.create_job("k1", "text-to-video", {}, job_id="e4", idempotency=later).id == "e4"
    # the sweeper forgets expired keys only
    store.create_job("k1", "text-to-video", {}, job_id="e5", idempotency=_claim("other", ttl=1))
    assert store.delete_expired_idempotency_keys(now_ms() + 2) == 1
    assert store.delete_expired_idempotency_keys(now_ms() + 2) == 0
    assert store.delete_expired_idempotency_keys(now_ms() + 120_000) == 1


def test_concurrent_duplicates_make_one_job(store: JobStore) -> None:
    n = 8
    barrier = threading.Barrier(n)
    made: list[str] = []
    errors: list[BaseException] = []

    def submit(i: int) -> None:
        barrier.wait()
        try:
            job = store.create_job("k1", "text-to-video", {}, job_id=f"c{i}", idempotency=_claim())
            made.append(job.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(made) == n and len(set(made)) == 1
    assert _page(store) == [made[0]]


def test_a_new_key_costs_one_statement(
    sql_store: SqlJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's lookup and record are one INSERT ... ON CONFLICT DO NOTHING RETURNING:
    a submit with a new key sends one statement more than one without (no fallback
    read, which a driver's rowcount of -1 once caused on PostgreSQL), and both go
    out together (jobs/store/batch.py: one round trip on PostgreSQL)."""
    seen: list[str] = []
    sends: list[list[str]] = []  # the INSERTs of each batch sent

    def name(statement: str) -> str:
        words = statement.split()
        return words[0].upper() + " " + words[2]

    def grab(_conn: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        # the doorbell's NOTIFY rides in every insert's transaction on PostgreSQL
        skip = ("BEGIN", "SELECT PG_ADVISORY", "SELECT PG_NOTIFY", "NOTIFY")
        if not statement.lstrip().upper().startswith(skip):
            seen.append(name(statement))

    send = Batch.send

    def spy(self: Batch, *args: Any, **kwargs: Any) -> Any:
        sends.append([name(sql) for sql, *_ in self.queue if sql.startswith("INSERT")])
        return send(self, *args, **kwargs)

    monkeypatch.setattr(Batch, "send", spy)
    event.listen(sql_store.engine, "before_cursor_execute", grab)
    try:
        sql_store.create_job("k1", "text-to-video", {}, job_id="one", idempotency=_claim())
        new_key = ["INSERT idempotency_keys", "INSERT jobs"]
        assert sends == [new_key] and seen == []
        seen.clear()
        sends.clear()
        sql_store.create_job("k1", "text-to-video", {}, job_id="two", idempotency=_claim())
        # a replay: the key's INSERT finds it, and no job goes in (the batch's job
        # INSERT rolls back, and the key is claimed again, the long way)
        assert seen[0] == "INSERT idempotency_keys" and "INSERT jobs" not in seen
        assert sql_store.get("two") is None
    finally:
        event.remove(sql_store.engine, "before_cursor_execute", grab)
