"""JobManager and the worker's job logic, over every store (memory runs in milliseconds).

The worker here is the real ``Worker`` with a scripted runner in place of the
runner child process: what is under test is claim -> run -> finish/fail/release
as the worker drives it through the manager, not the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ltxserve.config import Settings
from ltxserve.errors import ConcurrencyLimitError, NotFoundError
from ltxserve.jobs.lifecycle.manager import JobManager, Output
from ltxserve.jobs.lifecycle.payloads import INLINE_MAX
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import JobStore
from ltxserve.runner import Done, Failed, Progress, RunJob, Stop, Stopped
from ltxserve.storage.base import BlobNotFound
from ltxserve.storage.local import LocalBlobStore
from ltxserve.worker import RunnerCrashed, Worker

FAST = dict(
    heartbeat_seconds=0.05,
    progress_seconds=0.01,
    lease_seconds=5,
    stop_grace_seconds=2,
    max_unfinished_per_key=0,  # the limit (default 2) has tests of its own
)


@pytest.fixture
def make_manager(store: JobStore, tmp_path: Path) -> Iterator[Callable[..., JobManager]]:
    def make(**settings: Any) -> JobManager:
        s = Settings(data_dir=tmp_path / "data", **{**FAST, **settings})
        s.ensure_dirs()
        return JobManager(s, store, LocalBlobStore(s.blob_dir))

    yield make


def test_submit_claim_finish_stores_outputs_under_the_job(
    make_manager: Callable[..., JobManager], tmp_path: Path
) -> None:
    m = make_manager()
    job = m.submit("k1", "text-to-video", {"prompt": "x"})
    assert m.get("k1", "text-to-video", job.id).status == JobStatus.PENDING
    claimed = m.claim("w1")
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
    assert m.heartbeat(claimed, "w1", 0.5)
    assert not m.heartbeat(claimed, "w2")
    video = tmp_path / "out.mp4"
    video.write_bytes(b"\0" * 10)
    assert m.finish(claimed, "w1", {"video_url": Output(video, "video/mp4", {"engine": "e"})})
    view = m.get("k1", "text-to-video", job.id)
    assert view.status == JobStatus.COMPLETED and view.progress == 1.0
    out = (view.result or {})["video_url"]
    assert out == {
        "key": f"jobs/{job.id}/1/out.mp4",  # under the attempt
        "content_type": "video/mp4",
        "size": 10,
        "engine": "e",
    }
    assert m.blobs.local_path(out["key"]).read_bytes() == b"\0" * 10
    for key, endpoint in [("k2", "text-to-video"), ("k1", "retake")]:  # not yours / not here
        with pytest.raises(NotFoundError):
            m.get(key, endpoint, job.id)


def test_each_attempt_stores_apart_and_a_dropped_result_is_deleted(
    make_manager: Callable[..., JobManager], tmp_path: Path
) -> None:
    """A worker whose attempt was taken over (here: released, claimed again) finishes
    late: its files never touch the winner's and go at once; a cancelled job's result
    goes too. A retried write whose first try committed keeps its files (it won)."""
    m = make_manager()

    def outputs(name: str, data: bytes) -> dict[str, Output]:
        (tmp_path / name).write_bytes(data)
        return {"video_url": Output(tmp_path / name, "video/mp4")}

    job = m.submit("k1", "text-to-video", {})
    first = m.claim("w1")
    assert first is not None and m.release(first, "w1")
    second = m.claim("w2")
    assert second is not None and second.attempts == 2
    late = m.store_outputs(first, outputs("video.mp4", b"late"))
    won = m.store_outputs(second, outputs("video.mp4", b"winner"))
    assert late["video_url"]["key"] != won["video_url"]["key"]
    assert m.complete(second, "w2", won)
    assert m.complete(second, "w2", won)  # the retry of a write that committed
    assert not m.complete(first, "w1", late)
    with pytest.raises(BlobNotFound):
        m.blobs.size(late["video_url"]["key"])
    assert m.blobs.size(won["video_url"]["key"]) == len(b"winner")
    assert (m.job(job.id).result or {})["video_url"]["key"] == won["video_url"]["key"]  # type: ignore[union-attr]

    job = m.submit("k1", "text-to-video", {})
    running = m.claim("w1")
    assert running is not None
    stored = m.store_outputs(running, outputs("video.mp4", b"too late"))
    m.cancel("k1", "text-to-video", job.id)
    assert not m.complete(running, "w1", stored)
    with pytest.raises(BlobNotFound):
        m.blobs.size(stored["video_url"]["key"])


def test_admission_refusal_leaves_no_job_and_no_blob(
    make_manager: Callable[..., JobManager],
) -> None:
    m = make_manager(max_unfinished_per_key=1)
    big = "data:image/png;base64," + "A" * (INLINE_MAX + 10)
    first = m.submit("k1", "image-to-video", {"image_uri": big})
    assert m.job(first.id).request["image_uri"].startswith("ltx://jobs/")  # type: ignore[union-attr]
    with pytest.raises(ConcurrencyLimitError) as refused:
        m.submit("k1", "image-to-video", {"image_uri": big})
    assert refused.value.retry_after == 1
    files = [p.relative_to(m.settings.blob_dir) for p in m.settings.blob_dir.rglob("*")]
    stored = [p.parts for p in files if (m.settings.blob_dir / p).is_file()]
    assert stored == [("jobs", first.id, "request", "image_uri")]  # the refused one's is gone
    claimed = m.claim("w")
    assert claimed is not None and m.restore(claimed).request["image_uri"] == big
    assert m.fail(claimed, "w", "invalid_request_error", "bad")
    m.submit("k1", "image-to-video", {"image_uri": big})  # a finished job frees the slot


def test_uploads_are_the_key_s_own_until_they_expire(
    make_manager: Callable[..., JobManager], tmp_path: Path
) -> None:
    m = make_manager()
    up = m.uploads.create("k1")
    assert m.uploads.usable("k1", up.id) == up and m.uploads.usable("k2", up.id) is None
    body = tmp_path / "part"
    body.write_bytes(b"abc")
    assert m.uploads.complete(up, 3, "image/png", body)
    assert not m.uploads.complete(up, 3, "image/png", body)  # one PUT per URL
    assert m.blobs.local_path(up.blob_key).read_bytes() == b"abc"
    short = make_manager(upload_retention_seconds=0)
    gone = short.uploads.create("k1")
    body.write_bytes(b"abc")  # put_file took the first one
    assert short.uploads.complete(gone, 3, "image/png", body)
    assert short.uploads.usable("k1", gone.id) is None  # expired at once
    time.sleep(0.01)
    short.sweep()
    assert m.uploads.get(gone.id) is None and m.uploads.get(up.id) is not None
    with pytest.raises(BlobNotFound):
        m.blobs.local_path(gone.blob_key)


def test_sweep_deletes_expired_jobs_and_their_files(
    make_manager: Callable[..., JobManager], tmp_path: Path
) -> None:
    m = make_manager(retention_seconds=0.05)
    job = m.submit("k1", "text-to-video", {})
    claimed = m.claim("w")
    assert claimed is not None
    (tmp_path / "a.mp4").write_bytes(b"x")
    m.finish(claimed, "w", {"video_url": Output(tmp_path / "a.mp4", "video/mp4")})
    time.sleep(0.1)
    with pytest.raises(NotFoundError):  # past retention: gone before the sweep
        m.get("k1", "text-to-video", job.id)
    assert m.sweep() == {"failed": 0, "deleted": 1}
    assert m.job(job.id) is None and not (m.settings.blob_dir / "jobs" / job.id).exists()


class ScriptedRunner:
    """Stands in for the runner child: answers each RunJob with ``script(job)``."""

    engine = "scripted"

    def __init__(self, script: Callable[[RunJob], list[Any]]) -> None:
        self.script = script
        self.queue: list[Any] = []
        self.sent: list[Any] = []
        self.restarts = 0

    def send(self, msg: RunJob | Stop) -> None:
        self.sent.append(msg)
        if isinstance(msg, RunJob):
            self.queue = self.script(msg)
        elif isinstance(msg, Stop):
            self.queue = [Stopped(msg.job_id)]

    def recv(self, timeout: float) -> Any:
        if not self.queue:
            time.sleep(timeout)
            return None
        msg = self.queue.pop(0)
        if isinstance(msg, Exception):
            raise msg
        return msg() if callable(msg) else msg

    def start(self) -> None:
        self.restarts += 1

    def stop(self) -> None:
        pass


def _worker(m: JobManager, script: Callable[[RunJob], list[Any]]) -> Worker:
    w = Worker(m.settings, "minimal", manager=m)
    w.runner = ScriptedRunner(script)  # type: ignore[assignment]
    return w


def _done(run: RunJob) -> list[Any]:
    out = Path(run.output_dir) / "clip.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)  # as the runner does (dispatch.run_job)
    out.write_bytes(b"not a real video")
    return [Progress(run.job_id, 0.5), Done(run.job_id, {"video_url": (str(out), "video/mp4")})]


def test_worker_finishes_through_the_manager(make_manager: Callable[..., JobManager]) -> None:
    m = make_manager()
    job = m.submit("k1", "text-to-video", {"prompt": "x"})
    w = _worker(m, _done)
    claimed = m.claim(w.owner)
    assert claimed is not None
    w.process(claimed)
    done = m.job(job.id)
    assert done is not None and done.status == JobStatus.COMPLETED
    out = (done.result or {})["video_url"]
    assert out["key"] == f"jobs/{job.id}/1/clip.mp4" and out["engine"] == "scripted"
    assert m.blobs.local_path(out["key"]).read_bytes() == b"not a real video"


def test_a_completion_claims_the_next_job_and_a_stop_gives_it_back(
    make_manager: Callable[..., JobManager],
) -> None:
    """A worker's completion leases it the next job in the same write
    (complete_and_claim), for its loop to run without a claim of its own; when the stop
    comes as that claim lands, the loop runs nothing more and gives the job back."""
    m = make_manager()
    ids = {m.submit("k1", "text-to-video", {"prompt": str(n)}).id for n in range(3)}
    w = _worker(m, _done)
    first = m.claim(w.owner)
    assert first is not None
    w.process(first)
    assert m.job(first.id).status == JobStatus.COMPLETED  # type: ignore[union-attr]
    nxt = w.next_job
    assert nxt is not None and nxt.id in ids - {first.id}
    leased = m.job(nxt.id)
    assert leased is not None and (leased.status, leased.lease_owner) == (
        JobStatus.PROCESSING,
        w.owner,
    )
    w.stopping.set()  # the stop, as the completion's claim landed
    w.run()
    back = m.job(nxt.id)
    assert back is not None and (back.status, back.lease_owner) == (JobStatus.PENDING, None)
    assert w.next_job is None and w.runner.sent == [  # type: ignore[attr-defined]
        s
        for s in w.runner.sent
        if getattr(s, "job_id", None) == first.id  # type: ignore[attr-defined]
    ]
    assert sum(m.job(i).status == JobStatus.PENDING for i in ids) == 2  # type: ignore[union-attr]


def test_worker_records_the_engine_s_failure(make_manager: Callable[..., JobManager]) -> None:
    m = make_manager()
    job = m.submit("k1", "text-to-video", {})
    w = _worker(m, lambda run: [Failed(run.job_id, "invalid_request_error", "no such thing")])
    w.process(m.claim(w.owner))  # type: ignore[arg-type]
    failed = m.job(job.id)
    assert failed is not None and failed.status == JobStatus.FAILED
    assert (failed.error_type, failed.error_message) == ("invalid_request_error", "no such thing")


def test_worker_releases_after_a_crash_then_gives_up(
    make_manager: Callable[..., JobManager],
) -> None:
    m = make_manager(max_attempts=2)
    job = m.submit("k1", "text-to-video", {})
    w = _worker(m, lambda run: [RunnerCrashed("runner exited with code -9")])
    w.process(m.claim(w.owner))  # type: ignore[arg-type]
    assert m.job(job.id).status == JobStatus.PENDING  # type: ignore[union-attr]
    w.process(m.claim(w.owner))  # type: ignore[arg-type]
    given_up = m.job(job.id)
    assert given_up is not None and given_up.status == JobStatus.FAILED
    assert given_up.attempts == 2 and "crashed 2 times" in (given_up.error_message or "")
    assert w.runner.restarts == 2  # type: ignore[attr-defined]


def test_worker_stops_a_job_it_lost(make_manager: Callable[..., JobManager]) -> None:
    m = make_manager()
    job = m.submit("k1", "text-to-video", {})

    def script(run: RunJob) -> list[Any]:
        abandon = lambda: m.abandon(run.job_id, "client left") and None  # noqa: E731
        return [abandon] + [None] * 100  # then silence until the worker notices

    w = _worker(m, script)
    w.process(m.claim(w.owner))  # type: ignore[arg-type]
    assert any(isinstance(s, Stop) for s in w.runner.sent)  # type: ignore[attr-defined]
    assert w.runner.restarts == 0  # type: ignore[attr-defined]  # it stopped, stays loaded
    lost = m.job(job.id)
    assert lost is not None and lost.error_message == "client left"
