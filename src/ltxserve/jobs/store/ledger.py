"""Credits in SQL: a balance per key and the ledger of every movement (docs/credits.md).

Functions on a SQLAlchemy ``Connection`` that the caller has in a write
transaction, so each movement commits (or not) with what caused it:

- ``hold_later`` runs inside the submit's insert transaction (``AdmissionView``;
  on PostgreSQL one statement, sent with the job's INSERT and the COMMIT, which a
  refused hold stops): a
  conditional UPDATE (``balance >= amount``) moves credits from balance to held,
  so two submits of one key, in any number of API processes, cannot both spend
  the same credits: the second waits on the row lock (PostgreSQL) or the write
  lock (SQLite) and then sees the lowered balance.
- ``settle`` runs in the transaction that ends the job, right after its
  compare-and-set succeeded (``SqlJobStore._finish``; on PostgreSQL a worker's
  finish runs it as CTEs of that UPDATE, ``SETTLE_CTES``), so a job that ends once is
  settled once, whoever ends it (worker, reaper, v1 abandon, cancel); a worker
  killed mid-job ends nothing and settles nothing. The ledger's partial unique
  indexes refuse a second hold or settlement of one job in any case.

Amounts are whole credits. The store knows no price: the caller says how much.
"""

from __future__ import annotations

from typing import Any

import psycopg.errors
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import Credits, LedgerEntry, now_ms
from ltxserve.jobs.store.batch import Batch, Refusal
from ltxserve.jobs.store.tables import credit_balances, credit_ledger

TOP_UP, HOLD, CHARGE, RELEASE = "top_up", "hold", "charge", "release"
# The partial unique indexes' own predicates, as literals: a planner uses a partial
# index only when the query's WHERE implies the index's, which a bound parameter
# cannot show (SQLite, and PostgreSQL's generic plans).
_IS_HOLD = text("kind = 'hold'")
_IS_SETTLEMENT = text("kind IN ('charge', 'release')")
_HELD = select(credit_ledger.c.api_key_id, credit_ledger.c.amount).where(
    credit_ledger.c.job_id == bindparam("job_id"), _IS_HOLD
)
_SETTLED = select(credit_ledger.c.id).where(
    credit_ledger.c.job_id == bindparam("job_id"), _IS_SETTLEMENT
)


# The submit path's two statements, built once: building and keying a Core statement
# per call cost more than running it (SQLite, ~1 ms a submit on a loaded machine).
_ENTRY = insert(credit_ledger).values(
    api_key_id=bindparam("key"),
    kind=bindparam("kind"),
    amount=bindparam("amount"),
    balance=bindparam("balance"),
    job_id=bindparam("job_id"),
    note=bindparam("note"),
    created_at=bindparam("now"),
)
_HOLD = (
    update(credit_balances)
    .where(
        credit_balances.c.api_key_id == bindparam("key"),
        credit_balances.c.balance >= bindparam("amount"),
    )
    .values(
        balance=credit_balances.c.balance - bindparam("amount"),
        held=credit_balances.c.held + bindparam("amount"),
        updated_at=bindparam("now"),
    )
    .returning(credit_balances.c.balance)
)


def _entry(
    conn: Connection,
    api_key_id: str,
    kind: str,
    amount: int,
    balance: int,
    job_id: str | None = None,
    note: str | None = None,
) -> None:
    conn.execute(
        _ENTRY,
        {
            "key": api_key_id,
            "kind": kind,
            "amount": amount,
            "balance": balance,
            "job_id": job_id,
            "note": note,
            "now": now_ms(),
        },
    )


# PostgreSQL: the balance's UPDATE and the ledger's INSERT as one statement (a
# data-modifying CTE), queued on the submit's batch (batch.py) and sent with the
# job's INSERT and the COMMIT: no round trip of its own. The INSERT sees the UPDATE's
# RETURNING and writes nothing when the balance was short; the statement then
# divides by that nothing (a zero count, known only when it runs, so the planner
# cannot fold it), and the failure stops the pipeline before its COMMIT. The batch
# turns that one SQLSTATE (division_by_zero, which no other statement of a submit
# can raise) into the admission's refusal.
HOLD_PG = text(
    "WITH h AS (UPDATE credit_balances"
    " SET balance = balance - :amount, held = held + :amount, updated_at = :now"
    " WHERE api_key_id = :key AND balance >= :amount RETURNING balance),"
    " e AS (INSERT INTO credit_ledger (api_key_id, kind, amount, balance, job_id, note, created_at)"
    f" SELECT :key, '{HOLD}', :amount, h.balance, :job_id, NULL, :now FROM h RETURNING id)"
    " SELECT 1 / (SELECT count(*) FROM e) AS held"
)


# ``settle`` as CTEs, for a statement that ended the job in a CTE named ``ended``
# (RETURNING its id): PostgreSQL's finish (pg_finish.py) settles in the job's own
# UPDATE. Parameters: ``kind`` (charge or release), ``job_id``, ``now``. Nothing is
# written unless ``ended`` has the row, the job holds credits and is not settled yet.
SETTLE_CTES = (
    "held AS (SELECT h.api_key_id, h.amount FROM credit_ledger h JOIN ended ON h.job_id = ended.id"
    " WHERE h.kind = 'hold' AND NOT EXISTS (SELECT 1 FROM credit_ledger s"
    " WHERE s.job_id = ended.id AND s.kind IN ('charge', 'release'))),"
    " paid AS (UPDATE credit_balances b"
    f" SET balance = b.balance + CASE WHEN :kind = '{RELEASE}' THEN held.amount ELSE 0 END,"
    " held = b.held - held.amount, updated_at = :now"
    " FROM held WHERE b.api_key_id = held.api_key_id"
    " RETURNING b.api_key_id, b.balance, held.amount),"
    " settled AS (INSERT INTO credit_ledger"
    " (api_key_id, kind, amount, balance, job_id, note, created_at)"
    " SELECT paid.api_key_id, :kind, paid.amount, paid.balance, :job_id, NULL, :now FROM paid"
    " RETURNING id)"
)


def settle_kind(status: JobStatus) -> str:
    return CHARGE if status == JobStatus.COMPLETED else RELEASE


def hold_later(batch: Batch, api_key_id: str, job_id: str, amount: int, refusal: Exception) -> None:
    """Set ``amount`` aside for ``job_id``; ``refusal`` is raised when the balance is
    short (nothing written; the transaction then rolls back). PostgreSQL: queued on
    ``batch``, raised when it is sent. SQLite (no DML in a CTE, and no round trip to
    save): the UPDATE at once, the ledger's INSERT queued."""
    now = now_ms()
    params = {"key": api_key_id, "amount": amount, "now": now, "job_id": job_id}
    if not batch.sqlite:
        batch.add(HOLD_PG, params, refusal=Refusal(psycopg.errors.DivisionByZero, refusal))
        return
    row = batch.send(_HOLD, params)
    if not row:
        raise refusal
    batch.add(_ENTRY, {**params, "kind": HOLD, "balance": int(row["balance"]), "note": None})


def settle(conn: Connection, job_id: str, status: JobStatus) -> None:
    """Charge the job's hold (completed) or give it back (failed, cancelled).

    Called once per job, by the transaction whose compare-and-set ended it; a job
    submitted with credits off has no hold, and nothing happens.
    """
    held = conn.execute(_HELD, {"job_id": job_id}).first()
    if held is None:  # every job when credits are off: one probe of an index
        return
    settled = conn.execute(_SETTLED, {"job_id": job_id}).first()
    if settled is not None:
        return
    amount, key = int(held.amount), str(held.api_key_id)
    kind = settle_kind(status)
    back = amount if kind == RELEASE else 0
    row = conn.execute(
        update(credit_balances)
        .where(credit_balances.c.api_key_id == key)
        .values(
            balance=credit_balances.c.balance + back,
            held=credit_balances.c.held - amount,
            updated_at=now_ms(),
        )
        .returning(credit_balances.c.balance)
    ).one()
    _entry(conn, key, kind, amount, int(row.balance), job_id)


def top_up(conn: Connection, api_key_id: str, amount: int, note: str | None) -> Credits:
    """Add to (or, negative, take from) the key's balance; ValueError below zero."""
    now = now_ms()
    # the key's row first, if it has none (two first top-ups at once: one inserts), then
    # locked for the read-check-write
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(credit_balances)
        .values(api_key_id=api_key_id, balance=0, held=0, updated_at=now)
        .on_conflict_do_nothing()
    )
    row = conn.execute(
        select(credit_balances.c.balance, credit_balances.c.held)
        .where(credit_balances.c.api_key_id == api_key_id)
        .with_for_update()
    ).one()
    balance, held = int(row.balance), int(row.held)
    if balance + amount < 0:
        raise ValueError(f"the balance is {balance}; it cannot go below 0")
    conn.execute(
        update(credit_balances)
        .where(credit_balances.c.api_key_id == api_key_id)
        .values(balance=credit_balances.c.balance + amount, updated_at=now)
    )
    _entry(conn, api_key_id, TOP_UP, amount, balance + amount, note=note)
    return Credits(balance + amount, held)


def credits(conn: Connection, api_key_id: str) -> Credits:
    row = conn.execute(
        select(credit_balances.c.balance, credit_balances.c.held).where(
            credit_balances.c.api_key_id == api_key_id
        )
    ).first()
    return Credits(int(row.balance), int(row.held)) if row else Credits(0, 0)


def history(
    conn: Connection, api_key_id: str, limit: int, before: int | None = None
) -> list[LedgerEntry]:
    stmt = select(credit_ledger).where(credit_ledger.c.api_key_id == api_key_id)
    if before is not None:
        stmt = stmt.where(credit_ledger.c.id < before)
    rows = conn.execute(stmt.order_by(credit_ledger.c.id.desc()).limit(limit)).all()
    return [_ledger_entry(r._mapping) for r in rows]


def _ledger_entry(m: Any) -> LedgerEntry:
    return LedgerEntry(**{k: m[k] for k in LedgerEntry.__dataclass_fields__})
