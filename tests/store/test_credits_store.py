"""Credits in the store (docs/credits.md), over memory, SQLite and PostgreSQL: a hold
taken in the submit's transaction, settled once by whatever ends the job, and the
ledger's own refusal of a second settlement."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ltxserve.errors import InsufficientFundsError
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import AdmissionView, Credits, JobStore
from ltxserve.jobs.store.memory import MemoryJobStore
from ltxserve.jobs.store.sql import SqlJobStore

KEY = "k1"
RETAIN = 60_000


def hold(amount: int) -> Any:
    def admit(view: AdmissionView, key: str, endpoint: str, request: dict[str, Any]) -> None:
        view.hold_credits(key, amount, InsufficientFundsError(f"Required: {amount} credits"))

    return admit


def kinds(store: JobStore, key: str = KEY) -> list[tuple[str, int, int]]:
    """(kind, amount, balance after), oldest first."""
    return [(e.kind, e.amount, e.balance) for e in reversed(store.credit_history(key))]


def test_top_up_show_and_history(store: JobStore) -> None:
    assert store.credits(KEY) == Credits(0, 0)
    assert store.top_up_credits(KEY, 100, "first") == Credits(100, 0)
    assert store.top_up_credits(KEY, -30) == Credits(70, 0)
    with pytest.raises(ValueError, match="below 0"):
        store.top_up_credits(KEY, -71)
    assert store.credits(KEY) == Credits(70, 0)
    entries = store.credit_history(KEY)
    assert [(e.kind, e.amount, e.balance, e.note) for e in entries] == [
        ("top_up", -30, 70, None),
        ("top_up", 100, 100, "first"),
    ]
    assert entries[0].id > entries[1].id
    assert store.credit_history(KEY, limit=1) == entries[:1]
    assert store.credit_history(KEY, before=entries[0].id) == entries[1:]
    assert store.credit_history("other") == []


def test_hold_then_charge_on_completed(store: JobStore) -> None:
    store.top_up_credits(KEY, 100)
    job = store.create_job(KEY, "text-to-video", {"p": 1}, admit=hold(60))
    assert store.credits(KEY) == Credits(40, 60)
    claimed = store.claim("w1", 30, 3, retention_ms=RETAIN)
    assert claimed is not None and claimed.id == job.id
    assert store.finish(job.id, "w1", JobStatus.COMPLETED, RETAIN, result={"video": {}})
    assert store.credits(KEY) == Credits(40, 0)
    assert kinds(store) == [("top_up", 100, 100), ("hold", 60, 40), ("charge", 60, 40)]
    # a second end of the same job is refused by the CAS, and settles nothing
    assert not store.finish(job.id, None, JobStatus.FAILED, RETAIN, error=("api_error", "x"))
    assert store.credits(KEY) == Credits(40, 0)
    assert [e.job_id for e in store.credit_history(KEY)][:2] == [job.id, job.id]


def test_release_on_failed_and_on_abandon(store: JobStore) -> None:
    store.top_up_credits(KEY, 100)
    a = store.create_job(KEY, "text-to-video", {}, admit=hold(30))
    b = store.create_job(KEY, "text-to-video", {}, admit=hold(30))
    assert store.credits(KEY) == Credits(40, 60)
    store.claim("w1", 30, 3, retention_ms=RETAIN)
    assert store.finish(a.id, "w1", JobStatus.FAILED, RETAIN, error=("api_error", "boom"))
    # v1 abandon (and cancel) end a job with no owner: the same path
    assert store.finish(b.id, None, JobStatus.FAILED, RETAIN, error=("api_error", "gone"))
    assert store.credits(KEY) == Credits(100, 0)
    assert [k for k, _, _ in kinds(store)] == ["top_up", "hold", "hold", "release", "release"]


def test_refused_hold_leaves_nothing(store: JobStore) -> None:
    store.top_up_credits(KEY, 50)
    with pytest.raises(InsufficientFundsError, match="Required: 51 credits"):
        store.create_job(KEY, "text-to-video", {}, admit=hold(51))
    assert store.claim("w1", 30, 3, retention_ms=RETAIN) is None  # no job
    assert store.credits(KEY) == Credits(50, 0)
    with pytest.raises(InsufficientFundsError):  # a key never topped up has nothing
        store.create_job("k2", "text-to-video", {}, admit=hold(1))
    store.create_job(KEY, "text-to-video", {}, admit=hold(50))  # exactly the balance fits
    assert store.credits(KEY) == Credits(0, 50)


def test_reaper_releases_an_exhausted_job(store: JobStore) -> None:
    store.top_up_credits(KEY, 10)
    job = store.create_job(KEY, "text-to-video", {}, admit=hold(10))
    assert store.claim("w1", 0.001, 1, retention_ms=RETAIN) is not None
    threading.Event().wait(0.01)  # the lease runs out
    assert store.fail_exhausted(1, RETAIN) == 1
    assert store.credits(KEY) == Credits(10, 0)
    assert kinds(store)[-1] == ("release", 10, 10)
    assert store.get(job.id) is not None


def test_reclaim_after_lost_lease_charges_once(store: JobStore) -> None:
    """A worker loses the job (its lease ran out); another claims and completes it;
    the first one's late finish is refused and charges nothing more."""
    store.top_up_credits(KEY, 20)
    job = store.create_job(KEY, "text-to-video", {}, admit=hold(20))
    assert store.claim("w1", 0.001, 3, retention_ms=RETAIN) is not None
    threading.Event().wait(0.01)
    again = store.claim("w2", 30, 3, retention_ms=RETAIN)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not store.heartbeat(job.id, "w1", 30)
    assert store.finish(job.id, "w2", JobStatus.COMPLETED, RETAIN, result={})
    assert not store.finish(job.id, "w1", JobStatus.COMPLETED, RETAIN, result={})
    assert [k for k, _, _ in kinds(store)] == ["top_up", "hold", "charge"]
    assert store.credits(KEY) == Credits(0, 0)


def test_jobs_without_a_hold_settle_nothing(store: JobStore) -> None:
    job = store.create_job(KEY, "text-to-video", {})
    store.claim("w1", 30, 3, retention_ms=RETAIN)
    assert store.finish(job.id, "w1", JobStatus.COMPLETED, RETAIN, result={})
    assert store.credit_history(KEY) == [] and store.credits(KEY) == Credits(0, 0)


def test_concurrent_holds_never_overspend(store: JobStore) -> None:
    """Eight threads submit for one key with room for three: exactly three holds."""
    store.top_up_credits(KEY, 30)
    results: list[bool] = []
    lock = threading.Lock()

    def submit() -> None:
        try:
            store.create_job(KEY, "text-to-video", {}, admit=hold(10))
            ok = True
        except InsufficientFundsError:
            ok = False
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True] * 3
    assert store.credits(KEY) == Credits(0, 30)


def test_ledger_refuses_a_second_settlement(store: JobStore) -> None:
    """Below the CAS, the ledger itself (SQL: partial unique indexes) refuses to
    record a second charge or release of one job."""
    store.top_up_credits(KEY, 10)
    job = store.create_job(KEY, "text-to-video", {}, admit=hold(10))
    store.claim("w1", 30, 3, retention_ms=RETAIN)
    assert store.finish(job.id, "w1", JobStatus.COMPLETED, RETAIN, result={})
    if isinstance(store, MemoryJobStore):
        from ltxserve.jobs.store.memory import DuplicateError

        with pytest.raises(DuplicateError):
            store._ledger._add(KEY, "release", 10, job.id)
        return
    assert isinstance(store, SqlJobStore)
    from sqlalchemy import exc as sa_exc

    from ltxserve.jobs.store import ledger

    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:
        ledger._entry(conn, KEY, ledger.RELEASE, 10, 10, job.id)


def test_concurrent_first_top_ups_all_land(store: JobStore) -> None:
    """Four operators top a new key up at once: no duplicate-row error, every credit
    counted."""
    errors: list[BaseException] = []

    def top_up() -> None:
        try:
            store.top_up_credits("fresh", 10)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=top_up) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.credits("fresh") == Credits(40, 0)
    assert sorted(e.balance for e in store.credit_history("fresh")) == [10, 20, 30, 40]
