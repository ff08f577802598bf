"""The delivery loop: a thread in each API process, next to the sweeper.

Why the API process: every deployment runs one (workers may be GPU machines that
should only generate, and an API-only deployment with remote workers still
delivers), and it already runs the sweeper's housekeeping. Several API processes
share the work through the rows' leases; nothing lives in memory, so a restarted
process picks up where any process left off. It reaches the rows only through
``JobManager.deliveries``.

Each pass claims up to ``webhook_concurrency`` due deliveries, sends them in
parallel and records each outcome; a full batch is followed at once by another,
an empty one by a wait of ``webhook_poll_interval`` (so an event leaves within
about that long of the job's end, whichever process ended it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ltxserve.config import Settings
from ltxserve.errors import NotFoundError, StoreBusyError
from ltxserve.inputs.fetch import FetchPolicy
from ltxserve.jobs.lifecycle.deliveries import SUCCEEDED, Attempt
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.store.base import Delivery, now_ms
from ltxserve.metrics.instruments import WEBHOOK_DELIVERIES
from ltxserve.storage.base import StorageError
from ltxserve.webhooks.message import render
from ltxserve.webhooks.sender import post

log = logging.getLogger("ltxserve.webhooks")

PURGE_EVERY = 60.0  # seconds between two deletions of old finished deliveries


class Dispatcher(threading.Thread):
    def __init__(self, manager: JobManager, settings: Settings) -> None:
        super().__init__(name="ltxserve-webhooks", daemon=True)
        self.settings = settings
        self.deliveries = manager.deliveries
        self.manager = manager
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]
        self.policy = FetchPolicy.from_settings(settings)
        self.concurrency = max(1, settings.webhook_concurrency)
        self.stop_event = threading.Event()
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ltxserve-webhook")
        self._next_purge = 0.0

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                try:
                    sent = self.run_once()
                except StoreBusyError:
                    log.warning("webhook deliveries paused: the job store is busy")
                    sent = 0
                except Exception:  # noqa: BLE001 - keep delivering; the next pass retries
                    log.exception("webhook delivery pass failed")
                    sent = 0
                if sent < self.concurrency:
                    self.stop_event.wait(self.settings.webhook_poll_interval)
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> int:
        """Claim, send and record one batch; the number of deliveries attempted."""
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY
            self.deliveries.purge()
        batch = self.deliveries.claim(self.owner, self.concurrency)
        for future in [self.pool.submit(self.deliver, d) for d in batch]:
            future.result()
        return len(batch)

    def deliver(self, d: Delivery) -> None:
        payload = d.payload
        attempt: Attempt | None = None
        if payload is None:
            try:
                payload = render(self.manager, d)
            except NotFoundError:
                attempt = Attempt(now_ms(), 0, None, "the job is past its retention", final=True)
            except StorageError as exc:  # presigning result URLs failed: try again later
                attempt = Attempt(now_ms(), 0, None, f"the blob store failed: {exc}"[:300])
        secret = self.deliveries.secret(d.api_key_id)
        if attempt is None and secret is None:
            attempt = Attempt(now_ms(), 0, None, "the API key has no webhook secret", final=True)
        if attempt is None:
            assert payload is not None and secret is not None
            attempt = post(
                d.url,
                d.id,
                payload.encode(),
                secret,
                policy=self.policy,
                timeout=self.settings.webhook_timeout_seconds,
            )
        result = self.deliveries.record(d, self.owner, attempt, payload)
        WEBHOOK_DELIVERIES.labels(outcome="delivered" if attempt.ok else "failed").inc()
        log.log(
            logging.INFO if result.state == SUCCEEDED else logging.WARNING,
            "webhook %s (%s, job %s) attempt %d: %s -> %s",
            d.id,
            d.event,
            d.job_id,
            result.attempts,
            attempt.status_code or attempt.error,
            result.state,
        )
