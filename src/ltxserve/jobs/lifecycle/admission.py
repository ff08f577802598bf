"""Admission: the policies a submit must pass, checked inside the insert's transaction.

``JobManager.submit`` hands the policy to ``JobStore.create_job``, which runs it
in the same write transaction as the insert, on a view that serialises the
submits of one key (``base.AdmissionView``). A check and the insert it allows
are therefore one step: two API processes cannot both read "N-1 unfinished" and
both insert. Limits, credits and idempotency belong here.

The limits (limits.py: per-key concurrency, default 2; per-key rate; queue
depth; docs/limits.md) are always checked, since a key's own override may turn
one on whatever the server's settings. ``MaxUnfinishedPerKey`` is the
concurrency limit alone, for tests of the view. ``LTXSERVE_CREDITS=true``: the
job's estimated cost (pricing.py) is held against the key's balance; when it
does not fit, 402 ``insufficient_funds_error`` (docs/credits.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import ConcurrencyLimitError, InsufficientFundsError
from ltxserve.jobs.lifecycle.limits import Limits
from ltxserve.jobs.lifecycle.pricing import PriceTable
from ltxserve.jobs.store.base import Admission, AdmissionView

RETRY_AFTER_SECONDS = 1


class MaxUnfinishedPerKey:
    """At most ``limit`` jobs of one key pending or processing at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(
        self, view: AdmissionView, api_key_id: str, endpoint: str, request: dict[str, Any]
    ) -> None:
        if view.unfinished_jobs(api_key_id) >= self.limit:
            raise ConcurrencyLimitError(
                f"This key already has {self.limit} jobs pending or processing, the most "
                "it may have at once; retry when one has finished",
                retry_after=RETRY_AFTER_SECONDS,
            )


class CreditHold:
    """Hold the job's estimated cost against the key's balance (docs/credits.md).

    The hold is written in the insert's transaction, with the job's id, and settled
    (charged on completed, else released) in the transaction that ends the job.
    Checked last, so a job another policy refuses holds nothing.
    """

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices

    def __call__(
        self, view: AdmissionView, api_key_id: str, endpoint: str, request: dict[str, Any]
    ) -> None:
        cost = self.prices.estimate(endpoint, request)
        refusal = InsufficientFundsError(f"Insufficient funds. Required: {cost} credits")
        view.hold_credits(api_key_id, cost, refusal)


class AllOf:
    """Several policies, checked in order; the first refusal wins."""

    def __init__(self, policies: Sequence[Admission]) -> None:
        self.policies = list(policies)

    def __call__(
        self, view: AdmissionView, api_key_id: str, endpoint: str, request: dict[str, Any]
    ) -> None:
        for policy in self.policies:
            policy(view, api_key_id, endpoint, request)


def admission_from_settings(settings: Settings) -> Admission | None:
    """The policies of the deployment: the limits first (always: a key's own value may
    turn one on), then credits when on (last: it writes a hold)."""
    policies: list[Admission] = [Limits(settings)]
    if settings.credits:
        policies.append(CreditHold(PriceTable.load(settings.credits_prices_file)))
    return policies[0] if len(policies) == 1 else AllOf(policies)
