"""The SQL of the limits (docs/limits.md): key overrides, the rate bucket, the counts.

Functions on a SQLAlchemy ``Connection`` the caller already holds: the submit's
write transaction (through ``admission.SqlAdmissionView``) or one of the store's own.
The counts stop at the limit they are compared with (``LIMIT cap`` in a
subquery), so a check costs at most ``cap`` index entries however long the
queue: the key's count walks ``ix_jobs_key_unfinished``, the queue's
``ix_jobs_queue``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
from sqlalchemy import (
    Integer,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import KeyLimits
from ltxserve.jobs.store.batch import Batch, Refusal
from ltxserve.jobs.store.tables import jobs, key_limits

UNFINISHED = (JobStatus.PENDING.value, JobStatus.PROCESSING.value)
LIVE = text("jobs.status IN ('pending', 'processing')")
OVERRIDES = ("max_unfinished", "rate_per_second", "rate_burst")

# What the counts select: a constant, not jobs.id, so each is an index-only scan (the
# id is not in the indexes: selecting it cost a table lookup per counted job, most
# of a submit's cost with a long queue; bench/README.md)
_ONE: Any = literal_column("1")

QUEUE_SLACK = 64
"""How far below the queue-depth limit a PostgreSQL submit counts without the
queue lock. Closer than that, every submit of every key takes the lock and counts
again, so the limit is exact unless more than this many submits are in flight
at once while the queue is that far below it."""


def lock_id(name: str) -> int:
    """The 64-bit key of the advisory lock named ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def key_lock(api_key_id: str) -> str:
    return f"ltxserve:key:{api_key_id}"


LOCK = select(func.pg_advisory_xact_lock(bindparam("lock_id")))


def advisory_lock(conn: Connection, name: str) -> None:
    """A PostgreSQL transaction-scoped advisory lock named by ``name``."""
    conn.execute(LOCK, {"lock_id": lock_id(name)})


def read(conn: Connection, api_key_id: str) -> KeyLimits:
    row = conn.execute(select(key_limits).where(key_limits.c.api_key_id == api_key_id)).first()
    if row is None:
        return KeyLimits()
    m = row._mapping
    return KeyLimits(**{k: m[k] for k in KeyLimits.__dataclass_fields__})


def _upsert(conn: Connection, api_key_id: str, values: dict[str, Any]) -> None:
    """Insert the key's row or update the given columns of it, in one statement."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(key_limits).values(api_key_id=api_key_id, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["api_key_id"], set_=values))


def _tokens_upsert(dialect: Any) -> Any:
    stmt = dialect.insert(key_limits).values(
        api_key_id=bindparam("api_key_id"),
        tokens=bindparam("tokens"),
        tokens_at=bindparam("tokens_at"),
    )
    return stmt.on_conflict_do_update(
        index_elements=["api_key_id"],
        set_={"tokens": stmt.excluded.tokens, "tokens_at": stmt.excluded.tokens_at},
    )


# built once: building and keying a Core statement per submit cost more than running it
SAVE_TOKENS = {"postgresql": _tokens_upsert(postgresql), "sqlite": _tokens_upsert(sqlite)}


def save_tokens(conn: Connection, api_key_id: str, tokens: float, at_ms: int) -> None:
    stmt = SAVE_TOKENS[conn.dialect.name]
    conn.execute(stmt, {"api_key_id": api_key_id, "tokens": tokens, "tokens_at": at_ms})


def set_overrides(conn: Connection, api_key_id: str, overrides: dict[str, Any]) -> None:
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"not a key limit: {sorted(unknown)}")
    if overrides:
        _upsert(conn, api_key_id, overrides)


def unfinished(conn: Connection, api_key_id: str, cap: int | None) -> int:
    """The key's pending and processing jobs, counted up to ``cap`` (None: all)."""
    rows = select(_ONE).where(jobs.c.api_key_id == api_key_id, jobs.c.status.in_(UNFINISHED))
    if cap is not None:
        rows = rows.limit(cap)
    return int(conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one())


def _pending_count(cap: Any) -> Any:
    rows = select(_ONE).where(jobs.c.status == JobStatus.PENDING.value).limit(cap)
    return select(func.count()).select_from(rows.subquery())


def _snapshot_stmt() -> Any:
    """One round trip for everything the limits read: the key's row, its live jobs
    counted up to its own cap (else the server's), the queue counted up to its cap.
    A cap of 0 (no limit) makes a count of 0 at no cost."""
    key: Any = bindparam("api_key_id")
    own_cap = select(key_limits.c.max_unfinished).where(key_limits.c.api_key_id == key)
    cap = func.coalesce(own_cap.scalar_subquery(), bindparam("default_cap"))
    live = (
        select(_ONE)
        .where(jobs.c.api_key_id == key, LIVE)  # the index's own predicate, as text
        .limit(cap)
        .subquery()
    )
    one = select(literal(1).label("one")).subquery()
    return select(
        *(key_limits.c[name] for name in KeyLimits.__dataclass_fields__),
        select(func.count()).select_from(live).scalar_subquery().label("unfinished"),
        _pending_count(bindparam("pending_cap")).scalar_subquery().label("pending"),
    ).select_from(one.outerjoin(key_limits, key_limits.c.api_key_id == key))


_SNAPSHOT = _snapshot_stmt()


def snapshot(
    conn: Connection,
    api_key_id: str,
    default_cap: int,
    pending_cap: int,
    lock: str | None = None,
    batch: Batch | None = None,
) -> tuple[KeyLimits, int, int]:
    """(the key's row, its unfinished jobs, the queue's pending jobs) in one statement,
    after the advisory lock ``lock`` (PostgreSQL) when one is named, sent with what
    ``batch`` holds."""
    params = {"api_key_id": api_key_id, "default_cap": default_cap, "pending_cap": pending_cap}
    m = _read(batch or Batch(conn), lock, params)
    own = KeyLimits(**{k: m[k] for k in KeyLimits.__dataclass_fields__})
    return own, int(m["unfinished"]), int(m["pending"])


def _read(batch: Batch, lock: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """The lock and the read in one round trip (with whatever the batch holds, and
    the transaction's BEGIN if nothing was sent yet): the server runs them in order,
    so the read's snapshot is taken once the lock is held (READ COMMITTED: one per
    statement) and sees every submit of the key that committed before."""
    if lock is not None:
        batch.add(LOCK, {"lock_id": lock_id(lock)})
    return batch.send(_SNAPSHOT, params)


class OwnLimits(Exception):
    """The key has a limit of its own turned on: a submit that deferred reading it
    (``ATTEMPTS_UNLESS_OWN_LIMITS``) was refused on the server, and runs again with the read."""


# The job's ``attempts`` at insert when the submit deferred reading the key's limits
# (``AdmissionView.defer_to_insert``): 0, or a failure (22P02, invalid text for an
# integer) when the key has a concurrency or rate limit of its own turned on, so the
# INSERT fails on the server and its transaction with it. A value of the INSERT, not a
# statement of its own: a pipeline of two statements cost the API's client side twice
# the CPU of one (bench/README.md, "sixth pass"). The CASE is not constant (EXISTS),
# so nothing is folded at planning.
ATTEMPTS_UNLESS_OWN_LIMITS = cast(
    case(
        (
            exists().where(
                key_limits.c.api_key_id == bindparam("api_key_id"),
                or_(key_limits.c.max_unfinished > 0, key_limits.c.rate_per_second > 0),
            ),
            literal_column("'own limits'"),
        ),
        else_=literal_column("'0'"),
    ),
    Integer,
)


def own_limits_refusal(api_key_id: str) -> Refusal:
    """How the INSERT with ``ATTEMPTS_UNLESS_OWN_LIMITS`` refuses: ``OwnLimits``."""
    return Refusal(psycopg.errors.InvalidTextRepresentation, OwnLimits(api_key_id))


def pending(conn: Connection, cap: int) -> int:
    """Pending jobs of every key, counted up to ``cap``."""
    return int(conn.execute(_pending_count(cap)).scalar_one())


def near_queue_cap(n: int, cap: int) -> bool:
    """Whether a PostgreSQL submit must take the queue lock and count again."""
    return cap > 0 and n >= cap - QUEUE_SLACK


def lock_queue(conn: Connection) -> None:
    advisory_lock(conn, "ltxserve:queue")
