"""The delivery loop in one process, over the in-memory store (the fast tier): the
body is rendered at the first attempt and kept for the retries, a job past its
retention is given up without a request, and a key without a secret too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ltxserve.config import Settings
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.store.base import WEBHOOK_NOTE
from ltxserve.jobs.store.memory import MemoryJobStore
from ltxserve.keys import create_key
from ltxserve.storage.local import LocalBlobStore
from ltxserve.webhooks.dispatcher import Dispatcher
from tests.webhooks.receiver import Receiver, signature_ok


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1).start()
    yield r
    r.stop()


def _setup(tmp_path: Path, receiver: Receiver, **more: float) -> tuple[JobManager, Dispatcher]:
    s = Settings(
        data_dir=tmp_path / "data",
        allow_http=True,
        fetch_allow_hosts=[f"127.0.0.1:{receiver.port}"],
        webhook_retry_base_seconds=0.05,
        webhook_retry_max_seconds=0.1,
        **more,
    )
    manager = JobManager(s, MemoryJobStore(), LocalBlobStore(s.blob_dir))
    return manager, Dispatcher(manager, s)


def _completed(manager: JobManager, key_id: str, url: str) -> str:
    note = {WEBHOOK_NOTE: {"url": url, "base_url": "https://api.example.com"}}
    manager.store.create_job(key_id, "text-to-video", {"prompt": "p", **note})
    job = manager.claim("w")
    assert job is not None
    assert manager.complete(job, "w", {})
    return job.id


def test_rendered_once_then_resent_unchanged(tmp_path: Path, receiver: Receiver) -> None:
    manager, loop = _setup(tmp_path, receiver)
    create_key(manager.store, "k")
    (key,) = manager.store.list_keys()
    job_id = _completed(manager, key["id"], receiver.url("/flaky"))
    assert loop.run_once() == 1  # answered 500
    (d,) = manager.deliveries.of_job(job_id)
    assert d.state == "pending" and d.payload is not None
    data = json.loads(d.payload)["data"]
    assert data == {  # the status object, with its ltxserve extensions
        "status": "completed",
        "id": job_id,
        "created_at": data["created_at"],
        "completed_at": data["completed_at"],
        "expires_at": data["expires_at"],
        "progress": 1,
        "result": {},
    }
    time.sleep(0.15)
    assert loop.run_once() == 1  # answered 200
    (d,) = manager.deliveries.of_job(job_id)
    assert d.state == "succeeded" and [a["status_code"] for a in d.log] == [500, 200]
    hits = receiver.for_job(job_id)
    assert [h.body.decode() for h in hits] == [d.payload, d.payload]
    secret = manager.deliveries.secret(key["id"])
    assert secret is not None and all(signature_ok(secret, h.headers, h.body) for h in hits)


def test_past_retention_is_given_up(tmp_path: Path, receiver: Receiver) -> None:
    manager, loop = _setup(tmp_path, receiver, retention_seconds=0.05)
    create_key(manager.store, "k")
    (key,) = manager.store.list_keys()
    gone = _completed(manager, key["id"], receiver.url("/ok"))
    time.sleep(0.1)
    assert loop.run_once() == 1
    (d,) = manager.deliveries.of_job(gone)
    assert d.state == "failed" and d.payload is None and d.next_attempt_at is None
    assert [a["error"] for a in d.log] == ["the job is past its retention"]
    assert receiver.hits == []


def test_a_key_without_a_secret_is_given_up(tmp_path: Path, receiver: Receiver) -> None:
    manager, loop = _setup(tmp_path, receiver)
    manager.store.add_key("bare", "", "h" * 64, "ltxsk_bare")  # never given a secret
    job_id = _completed(manager, "bare", receiver.url("/ok"))
    assert loop.run_once() == 1
    (d,) = manager.deliveries.of_job(job_id)
    assert d.state == "failed" and "no webhook secret" in str(d.log[0]["error"])
    assert receiver.hits == []
