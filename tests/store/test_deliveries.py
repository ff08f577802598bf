"""The webhook part of the JobStore contract, over memory, SQLite and PostgreSQL:
a job that ends enqueues its one message in the same transaction (every ending:
finish, the claim's give-up, fail_exhausted), leases keep two loops off one row,
only the lease holder records, and the key's secret and default URL."""

from __future__ import annotations

import threading
import time

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import WEBHOOK_NOTE, DeliveryOutcome, JobStore, now_ms

RET = 60_000
NOTE = {WEBHOOK_NOTE: {"url": "https://hooks.example.com/x", "base_url": "http://api"}}


def _ended(store: JobStore, status: JobStatus = JobStatus.COMPLETED, note: bool = True) -> str:
    job = store.create_job("k1", "text-to-video", {"prompt": "p", **(NOTE if note else {})})
    assert store.claim("w", 30, 3, retention_ms=RET) is not None
    error = ("api_error", "boom") if status == JobStatus.FAILED else None
    assert store.finish(job.id, "w", status, RET, result={}, error=error)
    return job.id


def _outcome(state: str, attempts: int, due: int | None) -> DeliveryOutcome:
    log = [{"at": now_ms(), "duration_ms": 3, "status_code": 500, "error": "HTTP 500"}]
    done = None if state == "pending" else now_ms()
    return DeliveryOutcome(state, attempts, log, due, done, '{"type":"job.completed"}')


def test_a_job_that_ends_enqueues_one_message(store: JobStore) -> None:
    done = _ended(store)
    failed = _ended(store, JobStatus.FAILED)
    quiet = _ended(store, note=False)
    (d,) = store.deliveries_of(done)
    assert (d.event, d.url, d.base_url, d.endpoint) == (
        "job.completed",
        "https://hooks.example.com/x",
        "http://api",
        "text-to-video",
    )
    assert d.state == "pending" and d.attempts == 0 and d.payload is None and d.log == []
    assert d.api_key_id == "k1" and d.id.startswith("msg_")
    assert d.next_attempt_at is not None and d.next_attempt_at <= now_ms()
    assert [x.event for x in store.deliveries_of(failed)] == ["job.failed"]
    assert store.deliveries_of(quiet) == []
    # a second, refused ending enqueues nothing
    assert not store.finish(done, None, JobStatus.FAILED, RET, error=("api_error", "late"))
    assert len(store.deliveries_of(done)) == 1


def test_lost_jobs_given_up_enqueue_too(store: JobStore) -> None:
    a = store.create_job("k1", "text-to-video", dict(NOTE)).id
    assert store.claim("w", 0.001, 1, retention_ms=RET) is not None
    time.sleep(0.01)
    assert store.fail_exhausted(1, RET) == 1  # the sweeper's path
    b = store.create_job("k1", "text-to-video", dict(NOTE)).id
    assert store.claim("w", 0.001, 1, retention_ms=RET) is not None
    time.sleep(0.01)
    assert store.claim("w2", 30, 1, retention_ms=RET) is None  # the claim's give-up path
    for job_id in (a, b):
        assert [d.event for d in store.deliveries_of(job_id)] == ["job.failed"]


def test_leases_and_records(store: JobStore) -> None:
    job_id = _ended(store)
    (d,) = store.claim_deliveries("a", 10, 30)
    assert d.job_id == job_id
    assert store.claim_deliveries("b", 10, 30) == []  # leased to a
    later = now_ms() + 60_000
    assert not store.record_delivery(d.id, "b", _outcome("pending", 1, later))
    assert store.record_delivery(d.id, "a", _outcome("pending", 1, later))
    assert not store.record_delivery(d.id, "a", _outcome("pending", 2, later))  # lease gone
    (after,) = store.deliveries_of(job_id)
    assert after.attempts == 1 and after.payload == '{"type":"job.completed"}'
    assert after.log[0]["status_code"] == 500 and after.next_attempt_at == later
    assert store.claim_deliveries("b", 10, 30) == []  # not due yet
    assert not store.record_delivery(d.id, "x", _outcome("pending", 2, 0))  # never leased
    # leased briefly, the lease runs out: another loop takes it, the first cannot record
    job2 = _ended(store)
    (d2,) = store.claim_deliveries("a", 10, 0.001)
    assert d2.job_id == job2
    time.sleep(0.01)
    (again,) = store.claim_deliveries("b", 10, 30)
    assert again.id == d2.id
    assert not store.record_delivery(d2.id, "a", _outcome("succeeded", 1, None))
    assert store.record_delivery(d2.id, "b", _outcome("succeeded", 1, None))
    assert store.deliveries_of(job2)[0].state == "succeeded"
    assert store.claim_deliveries("c", 10, 30) == []
    # finished deliveries go once they ended before the cut; pending ones never
    assert store.purge_deliveries(now_ms() - 60_000) == 0
    assert store.purge_deliveries(now_ms() + 1) == 1
    assert store.deliveries_of(job2) == [] and len(store.deliveries_of(job_id)) == 1


def test_concurrent_claims_never_share_a_delivery(store: JobStore) -> None:
    ids = {_ended(store) for _ in range(12)}
    claimed: list[str] = []
    lock = threading.Lock()

    def loop(name: str) -> None:
        while batch := store.claim_deliveries(name, 2, 30):
            with lock:
                claimed.extend(d.job_id for d in batch)

    threads = [threading.Thread(target=loop, args=(f"l{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_key_webhook_url_and_secret(store: JobStore) -> None:
    store.add_key("id1", "ci", "h" * 64, "ltxsk_abc")
    assert store.webhook_secret("id1") is None
    row = store.set_key_webhook("id1", "https://hooks.example.com/k", "whsec_AAAA")
    assert row is not None and row["webhook_url"] == "https://hooks.example.com/k"
    assert store.webhook_secret("id1") == "whsec_AAAA"
    assert store.key_by_hash("h" * 64)["webhook_url"] == "https://hooks.example.com/k"  # type: ignore[index]
    row = store.set_key_webhook("id1", None)  # clear the URL, keep the secret
    assert row is not None and row["webhook_url"] is None
    assert store.webhook_secret("id1") == "whsec_AAAA"
    assert store.set_key_webhook("nope", None) is None
    assert store.webhook_secret("nope") is None
