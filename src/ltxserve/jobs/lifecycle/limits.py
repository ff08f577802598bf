"""The limits of a submit (docs/limits.md): per-key concurrency and rate, queue depth.

One admission policy (``Limits``) runs inside the submit's insert transaction
(admission.py), on a view that has serialised the submits of the key: so every
count it reads and the bucket it writes are the database's, and a limit holds
however many API processes take submits. In order:

1. one read (``AdmissionView.limits_state``, one statement): the key's row of
   ``key_limits`` (its overrides and rate bucket) and the two counts. With every
   server-wide limit off (0) nothing is read: the view defers the key's own to the
   job's INSERT (``defer_to_insert``), which fails when the key has one turned on,
   and the submit runs again with the read;
2. concurrency: the key's jobs pending or processing, against its override or
   ``LTXSERVE_MAX_UNFINISHED_PER_KEY`` (default 2) -> 429
   ``concurrency_limit_error``, Retry-After 1;
3. queue depth: pending jobs of every key against ``LTXSERVE_MAX_PENDING_JOBS``
   -> 503 ``service_unavailable``, Retry-After ``LTXSERVE_QUEUE_RETRY_AFTER_SECONDS``;
4. rate: a token bucket per key (``LTXSERVE_RATE_LIMIT_PER_SECOND``, ``_BURST``, or
   the key's override) -> 429 ``rate_limit_error``, Retry-After the seconds until
   a token. The bucket is written last and only by a submit that is admitted: a
   refused one rolls back with its transaction and costs the key no token.

The counts stop at the limit (store/limits.py), so none costs more than the
limit's number of index entries.
"""

from __future__ import annotations

import math
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import ConcurrencyLimitError, RateLimitError, ServiceUnavailableError
from ltxserve.jobs.store.base import AdmissionView, KeyLimits, now_ms

CONCURRENCY_RETRY_AFTER = 1


def take_token(limits: KeyLimits, rate: float, burst: int, now: int) -> tuple[float | None, float]:
    """The bucket after one take at ``now`` (ms): (new level, 0.0), or (None, seconds
    until a token) when it is empty. A bucket never used is full; a level written
    by a process whose clock runs ahead refills from zero, never backwards."""
    if limits.tokens is None or limits.tokens_at is None:
        level = float(burst)
    else:
        elapsed = max(0, now - limits.tokens_at) / 1000.0
        level = min(float(burst), limits.tokens + elapsed * rate)
    if level < 1.0:
        return None, (1.0 - level) / rate
    return level - 1.0, 0.0


class Limits:
    """The admission policy of the limits above, built from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.max_unfinished = settings.max_unfinished_per_key
        self.rate = settings.rate_limit_per_second
        self.burst = settings.rate_limit_burst
        self.max_pending = settings.max_pending_jobs
        self.queue_retry_after = settings.queue_retry_after_seconds

    def __call__(
        self, view: AdmissionView, api_key_id: str, endpoint: str, request: dict[str, Any]
    ) -> None:
        # One read (a round trip on PostgreSQL). With both per-key limits off server-wide
        # it is taken without serialising the key's submits (the queue count has its
        # own lock near its cap); a key whose own value turns one on is read again,
        # serialised, so its count and bucket are exact too.
        per_key = self.max_unfinished > 0 or self.rate > 0
        if not per_key and self.max_pending == 0 and view.defer_to_insert(api_key_id):
            return  # no limit of the server's: the INSERT refuses a key with its own
        state = view.limits_state(
            api_key_id, self.max_unfinished, self.max_pending, serialise=per_key
        )
        own = state.limits
        if not per_key and any(v for v in (own.max_unfinished, own.rate_per_second)):
            state = view.limits_state(api_key_id, self.max_unfinished, self.max_pending)
            own = state.limits
        cap = self.max_unfinished if own.max_unfinished is None else own.max_unfinished
        if cap > 0 and state.unfinished >= cap:
            raise ConcurrencyLimitError(
                f"This key already has {cap} jobs pending or processing, the most "
                "it may have at once; retry when one has finished",
                retry_after=CONCURRENCY_RETRY_AFTER,
            )
        if self.max_pending > 0 and state.pending >= self.max_pending:
            raise ServiceUnavailableError(
                f"The server's queue is full ({self.max_pending} jobs waiting); retry later",
                retry_after=self.queue_retry_after,
            )
        rate = self.rate if own.rate_per_second is None else own.rate_per_second
        if rate > 0:
            burst = self.burst if own.rate_burst is None else own.rate_burst
            now = now_ms()
            level, wait = take_token(own, rate, max(1, burst), now)
            if level is None:
                raise RateLimitError(
                    f"Too many submits for this key: at most {rate:g} per second "
                    f"(bursts of {burst}); retry after the time given",
                    retry_after=max(1, math.ceil(wait)),
                )
            view.save_tokens(api_key_id, level, now)
