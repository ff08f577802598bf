"""SqlAdmissionView: what an admission policy reads and writes inside the submit's transaction.

``SqlJobStore.create_job`` runs the caller's ``Admission`` on this view
(``base.AdmissionView``), in the same write transaction as the job's INSERT, so a
check and the insert it allows are one step. What the view need not read at once
waits in its ``Batch`` for the INSERT. The SQL is in limits.py and ledger.py.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from ltxserve.jobs.store import idempotency as idempotency_sql
from ltxserve.jobs.store import ledger
from ltxserve.jobs.store import limits as limits_sql
from ltxserve.jobs.store.base import LimitsState
from ltxserve.jobs.store.batch import Batch


class SqlAdmissionView:
    """Admission reads inside the submit's write transaction (``base.AdmissionView``).

    SQLite: the transaction began with BEGIN IMMEDIATE, so it is the database's
    only writer until it commits; nothing more is needed. PostgreSQL: each key is
    serialised by a transaction-scoped advisory lock, taken before the first read
    of that key and held until commit, so a second submit of the key waits for
    the first one's insert (bounded by lock_timeout, then StoreBusyError). The SQL
    is in limits.py.
    """

    def __init__(
        self, conn: Connection, sqlite: bool, job_id: str, *, may_defer: bool = True
    ) -> None:
        self.conn = conn
        self.sqlite = sqlite
        self.job_id = job_id  # the job being admitted
        self.may_defer = may_defer and not sqlite  # SQLite: no round trip to save
        self.locked: set[str] = set()
        self.deferred = False  # the key's own limits are the INSERT's to check
        # what need not be sent at once waits here for the next statement that must be
        # (batch.py: one round trip on PostgreSQL); the job's INSERT sends the rest
        self.batch = Batch(conn)

    def _lock(self, api_key_id: str) -> None:
        if self.sqlite or api_key_id in self.locked:
            return
        lock_id = limits_sql.lock_id(limits_sql.key_lock(api_key_id))
        self.batch.add(limits_sql.LOCK, {"lock_id": lock_id})
        self.locked.add(api_key_id)

    def _sync(self) -> None:
        """Send what waits, before a statement run straight on the connection."""
        if self.batch.pending():
            self.batch.send()

    def unfinished_jobs(self, api_key_id: str, cap: int | None = None) -> int:
        self._lock(api_key_id)
        self._sync()
        return limits_sql.unfinished(self.conn, api_key_id, cap)

    def limits_state(
        self, api_key_id: str, default_cap: int, pending_cap: int, *, serialise: bool = True
    ) -> LimitsState:
        lock = None
        if serialise and not self.sqlite and api_key_id not in self.locked:
            lock = limits_sql.key_lock(api_key_id)  # taken with the read, one round trip
        own, unfinished, pending = limits_sql.snapshot(
            self.conn, api_key_id, default_cap, pending_cap, lock, self.batch
        )
        if lock is not None:
            self.locked.add(api_key_id)
        if not self.sqlite and limits_sql.near_queue_cap(pending, pending_cap):
            self._sync()
            limits_sql.lock_queue(self.conn)  # near the cap: one submit at a time
            pending = limits_sql.pending(self.conn, pending_cap)
        return LimitsState(own, unfinished, pending)

    def defer_to_insert(self, api_key_id: str) -> bool:
        if not self.may_defer:
            return False
        self.deferred = True  # the INSERT checks (limits_sql.ATTEMPTS_UNLESS_OWN_LIMITS)
        return True

    def save_tokens(self, api_key_id: str, tokens: float, at_ms: int) -> None:
        self._lock(api_key_id)
        params = {"api_key_id": api_key_id, "tokens": tokens, "tokens_at": at_ms}
        self.batch.add(limits_sql.SAVE_TOKENS[self.conn.dialect.name], params)

    def hold_credits(self, api_key_id: str, amount: int, refusal: Exception) -> None:
        # a conditional UPDATE of the key's balance row: atomic on its own
        ledger.hold_later(self.batch, api_key_id, self.job_id, amount, refusal)


def replay_first(batch: Batch) -> None:
    """Send what waits before a refusal leaves: a key found there already (Replay)
    wins over the refusal; any other outcome leaves the refusal to be raised."""
    try:
        batch.send()
    except idempotency_sql.Replay:
        raise
    except Exception:  # noqa: BLE001, S110 - the refusal being raised says it all
        pass
