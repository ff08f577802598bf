"""The rules of an attempt (jobs/lifecycle/deliveries.py), as pure functions: the
backoff doubles with jitter up to its cap, the window ends retries, a refusal by
rule is final, and the attempt log keeps its first and latest entries."""

from __future__ import annotations

from ltxserve.jobs.lifecycle.deliveries import MAX_LOG, Attempt, Backoff, outcome
from ltxserve.jobs.store.base import Delivery, now_ms


def _delivery(attempts: int = 0, created_at: int | None = None) -> Delivery:
    now = now_ms()
    return Delivery(
        id="msg_1",
        job_id="j",
        api_key_id="k",
        endpoint="text-to-video",
        event="job.completed",
        url="https://hooks.example.com/",
        base_url="http://api",
        payload=None,
        state="pending",
        attempts=attempts,
        created_at=created_at if created_at is not None else now,
        next_attempt_at=now,
        completed_at=None,
        log=[
            {"at": i, "duration_ms": 1, "status_code": 500, "error": "x"} for i in range(attempts)
        ],
    )


def test_backoff_doubles_with_equal_jitter_up_to_the_cap() -> None:
    b = Backoff(base=2, cap=30, window=3600)
    for failures, full in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (12, 30)]:
        delays = [b.delay_ms(failures) for _ in range(200)]
        assert min(delays) >= full * 500 and max(delays) <= full * 1000, (failures, delays)
        assert len(set(delays)) > 50  # spread out, not one value


def test_outcomes() -> None:
    b = Backoff(base=1, cap=10, window=60)
    ok = outcome(_delivery(), Attempt(now_ms(), 5, 204, None), "{}", b)
    assert ok.state == "succeeded" and ok.attempts == 1 and ok.next_attempt_at is None
    assert ok.completed_at is not None and ok.payload == "{}"
    again = outcome(_delivery(2), Attempt(now_ms(), 5, 500, "HTTP 500"), "{}", b)
    assert again.state == "pending" and again.completed_at is None and again.attempts == 3
    assert again.next_attempt_at is not None and again.next_attempt_at > now_ms()
    assert again.log[-1]["status_code"] == 500
    refused = outcome(_delivery(), Attempt(now_ms(), 0, None, "refused", final=True), "{}", b)
    assert refused.state == "failed" and refused.next_attempt_at is None
    old = _delivery(3, created_at=now_ms() - 59_000)  # the next try would land past 60 s
    late = outcome(old, Attempt(now_ms(), 5, None, "timeout"), "{}", b)
    assert late.state == "failed" and late.completed_at is not None


def test_the_log_keeps_the_first_and_latest_attempts() -> None:
    b = Backoff(base=1, cap=1, window=10**9)
    out = outcome(_delivery(MAX_LOG + 5), Attempt(now_ms(), 1, 503, "HTTP 503"), "{}", b)
    assert len(out.log) == MAX_LOG and out.attempts == MAX_LOG + 6
    assert out.log[0]["at"] == 0 and out.log[-1]["status_code"] == 503
    assert out.log[1]["at"] == 7  # entries 1..6 gave way
