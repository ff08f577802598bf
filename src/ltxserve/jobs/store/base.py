"""The store as a Protocol, and the records it hands out.

Two implementations keep the same contract (tests/store/ runs one set of tests
over both): ``sql.SqlJobStore`` (SQLite on one machine, PostgreSQL for many) and
``memory.MemoryJobStore`` (one process; the fast unit tier for the manager and
the worker). Whatever the implementation:

- a status changes only through ``states.check_transition`` and a compare-and-set
  (the old status and attempt count must still hold), so two callers racing on
  one job cannot both win;
- ``create_job`` runs the caller's ``Admission`` inside the same write
  transaction as the insert, on a view that serialises submits of one key, so a
  limit that reads the key's unfinished jobs holds under any number of API
  processes.

Times are integer milliseconds since the epoch (``now_ms``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ltxserve.jobs.lifecycle.changes import ChangeFeed
from ltxserve.jobs.lifecycle.doorbell import Doorbell
from ltxserve.jobs.lifecycle.states import TERMINAL, JobStatus


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Job:
    id: str
    api_key_id: str
    endpoint: str
    status: JobStatus
    request: dict[str, Any]
    created_at: int
    started_at: int | None
    completed_at: int | None
    expires_at: int | None
    result: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    progress: float | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: int | None
    version: int = 0  # bumped by every status or progress change (live events' id)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def pending(cls, job_id: str, api_key_id: str, endpoint: str, request: dict[str, Any]) -> Job:
        """The row a submit inserts, as a store hands it back (no second read)."""
        return cls(
            id=job_id,
            api_key_id=api_key_id,
            endpoint=endpoint,
            status=JobStatus.PENDING,
            request=request,
            created_at=now_ms(),
            started_at=None,
            completed_at=None,
            expires_at=None,
            result=None,
            error_type=None,
            error_message=None,
            progress=None,
            attempts=0,
            lease_owner=None,
            lease_expires_at=None,
        )


@dataclass(frozen=True)
class JobView:
    """What a status poll needs of a job: no request (it can be large), no lease."""

    id: str
    api_key_id: str
    endpoint: str
    status: JobStatus
    created_at: int
    completed_at: int | None
    expires_at: int | None
    result: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    progress: float | None
    version: int = 0  # bumped by every status or progress change (live events' id)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class ListQuery:
    """One page of ``GET /v2/jobs`` (jobs/store/listing.py): a key's jobs, newest first.

    ``after`` is the keyset position (created_at, id) of the last job of the
    previous page: the page holds the jobs strictly older in that order, so jobs
    added meanwhile (newer) never shift it. Jobs whose retention ended (expires_at
    at or before ``now``) are left out. Empty filters mean "any"."""

    api_key_id: str
    now: int
    limit: int
    endpoints: tuple[str, ...] = ()
    statuses: tuple[JobStatus, ...] = ()
    created_after: int | None = None  # exclusive, ms
    created_before: int | None = None  # exclusive, ms
    after: tuple[int, str] | None = None


@dataclass(frozen=True)
class IdempotencyClaim:
    """An ``Idempotency-Key`` a submit carries (jobs/store/idempotency.py): the key
    names ``job_id`` for this API key until ``expires_at`` unless one does already.

    ``request_hash`` is the hash of the canonical request (endpoint and body): the
    same key with another hash is refused (IdempotencyConflictError, 409)."""

    api_key_id: str
    key: str
    request_hash: str
    now: int
    expires_at: int


STORAGE_PREFIX = "ltx://uploads/"


def upload_blob_key(upload_id: str) -> str:
    return f"uploads/{upload_id}"


def valid_upload_id(upload_id: str) -> bool:
    return len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)


@dataclass(frozen=True)
class Upload:
    """The row behind ``POST /v1/upload``: one PUT until ``url_expires_at``, then usable
    as ``ltx://uploads/<id>`` by the same key until ``expires_at``."""

    id: str
    api_key_id: str
    created_at: int
    url_expires_at: int
    expires_at: int
    completed_at: int | None
    size: int | None
    content_type: str | None

    @property
    def storage_uri(self) -> str:
        return f"{STORAGE_PREFIX}{self.id}"

    @property
    def blob_key(self) -> str:
        return upload_blob_key(self.id)


@dataclass(frozen=True)
class KeyLimits:
    """One key's limit overrides and its rate bucket (table key_limits; docs/limits.md).

    An override of None means "the server's setting"; 0 means "no limit" for this
    key. ``tokens`` is the bucket's level at ``tokens_at`` (ms); None: never used,
    hence full.
    """

    max_unfinished: int | None = None
    rate_per_second: float | None = None
    rate_burst: int | None = None
    tokens: float | None = None
    tokens_at: int | None = None


@dataclass(frozen=True)
class LimitsState:
    """``AdmissionView.limits_state``: a key's limits row and the two counts."""

    limits: KeyLimits
    unfinished: int
    pending: int


@dataclass(frozen=True)
class Credits:
    """A key's credits (docs/credits.md): what it may spend, and what its unfinished
    jobs hold."""

    balance: int
    held: int


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of a key's credits; ``kind`` says which way: top_up (``amount``
    added to the balance; negative when the operator takes credits back), hold
    (balance -> held), charge (held -> spent), release (held -> balance); those three
    carry the job's id and a positive amount. ``balance`` is the key's balance after
    it."""

    id: int
    api_key_id: str
    kind: str
    amount: int
    balance: int
    job_id: str | None
    note: str | None
    created_at: int


WEBHOOK_NOTE = "_webhook"
"""The server's note on a job whose end is to be sent as a webhook (docs/webhooks.md):
``{"url": ..., "base_url": ...}``, set at submit, read by the store as the job ends."""

WEBHOOK_EVENTS = {JobStatus.COMPLETED: "job.completed", JobStatus.FAILED: "job.failed"}


@dataclass(frozen=True)
class Delivery:
    """One webhook message and its attempts (a ``webhook_deliveries`` row).

    Enqueued by the store in the transaction that ends the job; ``payload`` is set
    by the first attempt and sent unchanged by every later one. ``state`` is
    pending (an attempt is due at ``next_attempt_at``), succeeded or failed (given
    up). ``log`` holds the attempts: at, duration_ms, status_code, error."""

    id: str
    job_id: str
    api_key_id: str
    endpoint: str
    event: str
    url: str
    base_url: str
    payload: str | None
    state: str
    attempts: int
    created_at: int
    next_attempt_at: int | None
    completed_at: int | None
    log: list[dict[str, Any]]


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt leaves on its delivery (written only by the lease holder)."""

    state: str
    attempts: int
    log: list[dict[str, Any]]
    next_attempt_at: int | None
    completed_at: int | None
    payload: str | None  # None only while no attempt could render it


class AdmissionView(Protocol):
    """What an admission check may read, inside the submit's write transaction.

    Each read of a key's state first serialises this transaction against every
    other submit that reads the same key (a row of its own on PostgreSQL, the
    database's single writer on SQLite, a lock in memory), until the insert commits.
    """

    def unfinished_jobs(self, api_key_id: str, cap: int | None = None) -> int:
        """Jobs of this key that are pending or processing (counted up to ``cap``)."""
        ...

    def limits_state(
        self, api_key_id: str, default_cap: int, pending_cap: int, *, serialise: bool = True
    ) -> LimitsState:
        """What the limits read, in one round trip: the key's row, its unfinished jobs
        counted up to its own cap (else ``default_cap``; 0: not counted), the queue's
        pending jobs counted up to ``pending_cap`` (0: not counted; exact near the cap,
        where submits of every key are serialised). ``serialise`` first serialises
        the key's submits, as ``unfinished_jobs`` does; without it the read is a hint."""
        ...

    def defer_to_insert(self, api_key_id: str) -> bool:
        """Leave the key's own limits to the job's INSERT, if this view can: the submit
        then fails on the server when the key has a limit of its own turned on (its
        ``max_unfinished`` or ``rate_per_second``), and the store runs it again on a view
        that cannot defer, which reads them. True when deferred: a submit that no limit
        of the server's applies to reads nothing first (PostgreSQL: a round trip)."""
        ...

    def save_tokens(self, api_key_id: str, tokens: float, at_ms: int) -> None:
        """Write the key's rate bucket level, committed with the job (or not at all)."""
        ...

    def hold_credits(self, api_key_id: str, amount: int, refusal: Exception) -> None:
        """Move ``amount`` from the key's balance to held for the job being submitted
        (recorded in the ledger with its id); when the balance is short, nothing is
        written and ``refusal`` is raised: at once, or (PostgreSQL, jobs/store/batch.py)
        when the submit's statements are sent with the job's INSERT, still inside the
        submit. The hold is charged or released when the job ends."""
        ...


class Admission(Protocol):
    """A submit-time policy (limits, credits, idempotency): raise a domain error to
    refuse the job; returning admits it. Runs in the insert's transaction."""

    def __call__(
        self, view: AdmissionView, api_key_id: str, endpoint: str, request: dict[str, Any]
    ) -> None: ...


class JobStore(Protocol):
    """Every read and write of jobs, uploads and keys."""

    @property
    def inline_reads(self) -> bool:
        """True when a primary-key read is cheap enough to run on an event loop
        (local SQLite, memory); False for a networked database."""
        ...

    @property
    def rings_on_insert(self) -> bool:
        """True when ``create_job``'s own transaction rings the doorbell (PostgreSQL:
        a NOTIFY, delivered at commit), so a submit need not ring after it."""
        ...

    def doorbell(self, data_dir: Path) -> Doorbell:
        """A doorbell that reaches the workers of this store (lifecycle/doorbell.py)."""
        ...

    def change_feed(self) -> ChangeFeed:
        """How an API process hears of job changes (lifecycle/changes.py); one per process."""
        ...

    # -- keys
    def add_key(
        self, key_id: str, name: str, key_hash: str, prefix: str, simulate: str | None = None
    ) -> None: ...
    def key_by_hash(self, key_hash: str) -> dict[str, Any] | None: ...
    def list_keys(self) -> list[dict[str, Any]]: ...
    def revoke_key(self, key_id_or_prefix: str) -> int: ...
    def get_key_limits(self, key_id: str) -> KeyLimits: ...
    def set_key_limits(self, key_id: str, **overrides: int | float | None) -> None:
        """Set overrides (``max_unfinished``, ``rate_per_second``, ``rate_burst``) of a
        key; a None value clears one (back to the server's setting)."""
        ...

    def set_key_webhook(
        self, key_id: str, url: str | None, secret: str | None = None
    ) -> dict[str, Any] | None:
        """Set (None: clear) a key's default webhook URL and, when given, its signing
        secret; the key's row afterwards, None for no such key."""
        ...

    # -- operations (docs/operations.md)
    def ping(self) -> None:
        """A trivial round trip (/readyz); raises when the store cannot answer."""
        ...

    def count_jobs(self, in_flight: bool) -> dict[tuple[str, str], int]:
        """(status, endpoint) -> jobs, for /metrics: the pending and processing ones
        (``in_flight``, as many rows as the backlog) or the ended, retained ones."""
        ...

    # -- jobs
    def create_job(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str | None = None,
        *,
        admit: Admission | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> Job:
        """Insert a pending job, ``admit`` first in the same write transaction.

        With ``idempotency``, the key is looked up first in that transaction: a live
        key naming a live job with the same hash returns that job (no admission, no
        insert); with another hash it raises IdempotencyConflictError; else the key
        is recorded for the new job, which commits with it."""
        ...

    async def acreate_job(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str,
        *,
        admit: Admission | None = None,
    ) -> Job | None:
        """``create_job`` (no Idempotency-Key) without blocking the event loop, when
        this store can do it that way; None when it cannot (then call ``create_job``
        in a thread), having written nothing."""
        ...

    def list_jobs(self, query: ListQuery) -> list[JobView]:
        """Up to ``query.limit`` jobs of the key, newest first (ListQuery)."""
        ...

    def delete_expired_idempotency_keys(self, now: int) -> int:
        """Forget the Idempotency-Keys whose time ran out (the sweeper)."""
        ...

    def get(self, job_id: str) -> Job | None: ...
    def view(self, job_id: str) -> JobView | None: ...
    async def aview(self, job_id: str) -> JobView | None:
        """``view`` without blocking the event loop: awaited on a non-blocking driver
        (PostgreSQL), or inline where reads are (``inline_reads``)."""
        ...

    async def aclose(self) -> None:
        """Close the connections ``aview`` and ``acreate_job`` opened on this loop."""
        ...

    def versions(self, ids: list[str]) -> dict[str, int]:
        """job id -> version (bumped by every status or progress change) of those that exist."""
        ...

    def claim(
        self, owner: str, lease_seconds: float, max_attempts: int, *, retention_ms: int
    ) -> Job | None: ...
    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, progress: float | None = None
    ) -> bool: ...
    def finish(
        self,
        job_id: str,
        owner: str | None,
        status: JobStatus,
        retention_ms: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        claimed: Job | None = None,
    ) -> bool:
        """Move a job to a terminal status; False if another process got there first.
        ``claimed``: the job as ``owner`` claimed it (a worker ending its own job), whose
        (status, attempts) the compare-and-set checks with no read first."""
        ...

    def complete_and_claim(
        self,
        claimed: Job,
        owner: str,
        retention_ms: int,
        *,
        result: dict[str, Any] | None,
        lease_seconds: float,
        max_attempts: int,
    ) -> tuple[bool, Job | None]:
        """``finish`` of ``owner``'s own job as completed, then ``claim``: (whether the
        finish won, the next job). A worker's hot path, which a store may do at once."""
        ...

    def release(self, job_id: str, owner: str) -> bool: ...
    def fail_exhausted(self, max_attempts: int, retention_ms: int) -> int: ...
    def expired_ids(self, limit: int = 500) -> list[str]: ...
    def delete_jobs(self, ids: list[str]) -> int: ...

    # -- webhook deliveries (docs/webhooks.md); enqueued as a job ends, by the store
    def claim_deliveries(self, owner: str, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to ``limit`` pending deliveries now due and not leased elsewhere, oldest
        due first, leased to ``owner``."""
        ...

    def record_delivery(self, delivery_id: str, owner: str, outcome: DeliveryOutcome) -> bool:
        """Write an attempt's outcome and drop the lease; False if the lease is lost."""
        ...

    def deliveries_of(self, job_id: str) -> list[Delivery]: ...
    def webhook_secret(self, api_key_id: str) -> str | None: ...
    def purge_deliveries(self, ended_before: int) -> int:
        """Delete succeeded or failed deliveries that ended before ``ended_before``."""
        ...

    # -- uploads
    def add_upload(self, upload: Upload) -> None: ...
    def get_upload(self, upload_id: str) -> Upload | None: ...
    def complete_upload(self, upload_id: str, size: int, content_type: str | None) -> bool:
        """Mark the PUT as landed; False if another PUT got there first or the URL expired."""
        ...

    def expired_upload_ids(self, limit: int = 500) -> list[str]: ...
    def delete_uploads(self, ids: list[str]) -> int: ...

    # -- credits (docs/credits.md): holds are taken by AdmissionView.hold_credits and
    # settled in the transaction that ends the job (charge on completed, else release)
    def top_up_credits(self, api_key_id: str, amount: int, note: str | None = None) -> Credits:
        """Add ``amount`` (negative: take back, never below 0) to the key's balance;
        ValueError when the balance would go negative."""
        ...

    def credits(self, api_key_id: str) -> Credits:
        """The key's balance and held credits (0 and 0 for a key never topped up)."""
        ...

    def credit_history(
        self, api_key_id: str, limit: int = 50, before: int | None = None
    ) -> list[LedgerEntry]:
        """The key's ledger, newest first; ``before``: entries older than that id."""
        ...


LOST_MESSAGE = "the job was lost by its worker {n} times and was given up"
