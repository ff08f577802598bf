"""Webhook deliveries: the rules between the store's rows and the delivery loop.

The store enqueues a delivery in the transaction that ends a job (docs/webhooks.md)
and hands rows out under a lease (``claim_deliveries``). What an attempt means is
decided here: success on any 2xx; otherwise a retry after an exponential backoff
with jitter, until ``webhook_retry_window_seconds`` after the job ended or an
attempt that cannot succeed by retrying (a target the SSRF guard refuses, a job
past retention), when the delivery is given up. Reached through
``JobManager.deliveries``; the loop that sends is ``webhooks/dispatcher.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ltxserve.config import Settings
from ltxserve.jobs.store.base import Delivery, DeliveryOutcome, JobStore, now_ms

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
MAX_LOG = 50  # attempts kept per delivery (the first one and the latest ones)


@dataclass(frozen=True)
class Attempt:
    """One try: ``status_code`` None when no answer came; ``final`` when retrying is
    pointless (the target is refused by the SSRF guard, the job is gone)."""

    at: int
    duration_ms: int
    status_code: int | None
    error: str | None
    final: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Backoff:
    base: float  # seconds before the first retry (3/4 of it on average, with jitter)
    cap: float  # longest wait between two attempts
    window: float  # from the job's end; past it the delivery is given up

    def delay_ms(self, failures: int) -> int:
        """Exponential with "equal jitter" (half fixed, half random), so the retries of
        many deliveries that failed together spread out instead of arriving together."""
        full = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return int((full / 2 + random.uniform(0, full / 2)) * 1000)


def outcome(
    d: Delivery, attempt: Attempt, payload: str | None, backoff: Backoff
) -> DeliveryOutcome:
    """The delivery after ``attempt``: succeeded, failed (given up) or due again."""
    log = [
        *d.log,
        {
            "at": attempt.at,
            "duration_ms": attempt.duration_ms,
            "status_code": attempt.status_code,
            "error": attempt.error,
        },
    ]
    if len(log) > MAX_LOG:
        log = [log[0], *log[-(MAX_LOG - 1) :]]
    now = now_ms()
    state: str = SUCCEEDED
    due: int | None = None
    ended: int | None = now
    if not attempt.ok:
        due = now + backoff.delay_ms(d.attempts + 1)
        if attempt.final or due > d.created_at + int(backoff.window * 1000):
            state, due = FAILED, None
        else:
            state, ended = PENDING, None
    return DeliveryOutcome(
        state=state,
        attempts=d.attempts + 1,
        log=log,
        next_attempt_at=due,
        completed_at=ended,
        payload=payload,
    )


class Deliveries:
    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.backoff = Backoff(
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_seconds,
            settings.webhook_retry_window_seconds,
        )

    @property
    def lease_seconds(self) -> float:
        """Longer than one attempt can take, with room for recording it."""
        return self.settings.webhook_timeout_seconds * 2 + 30

    def claim(self, owner: str, limit: int) -> list[Delivery]:
        return self.store.claim_deliveries(owner, limit, self.lease_seconds)

    def record(
        self, d: Delivery, owner: str, attempt: Attempt, payload: str | None
    ) -> DeliveryOutcome:
        """Write the attempt; the outcome (written only while the lease is ours)."""
        result = outcome(d, attempt, payload, self.backoff)
        self.store.record_delivery(d.id, owner, result)
        return result

    def secret(self, api_key_id: str) -> str | None:
        """The key's signing secret (``whsec_...``), None if it has none or is gone."""
        return self.store.webhook_secret(api_key_id)

    def of_job(self, job_id: str) -> list[Delivery]:
        """Every delivery of the job, oldest first (the caller checks who may see them)."""
        return self.store.deliveries_of(job_id)

    def purge(self) -> int:
        """Drop deliveries that ended longer ago than the jobs' retention."""
        keep_ms = int(self.settings.retention_seconds * 1000)
        return self.store.purge_deliveries(now_ms() - keep_ms)
