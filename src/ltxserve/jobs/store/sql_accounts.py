"""SqlAccounts: what the SQL store keeps for an API key beside its jobs.

The key itself and its limits, its webhook and the deliveries sent to it, its
uploads and its credits, and the two ways in that every method of the store uses:
``read`` (a connection, saturation as StoreBusyError) and ``_write`` (the write
transaction, connection.py). ``sql.SqlJobStore`` extends it with the job queue;
the SQL of each part lives in its own module (limits.py, deliveries.py,
ledger.py), so this class only opens the connection and hands it on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from ltxserve.jobs.store import deliveries, ledger
from ltxserve.jobs.store import limits as limits_sql
from ltxserve.jobs.store.base import (
    Credits,
    Delivery,
    DeliveryOutcome,
    KeyLimits,
    LedgerEntry,
    Upload,
    now_ms,
    valid_upload_id,
)
from ltxserve.jobs.store.connection import DEFAULT_DB_TIMEOUT, FastQuery, WriteTx, busy_as_503
from ltxserve.jobs.store.tables import api_keys, uploads

_KEY_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("key_hash"))


class SqlAccounts:
    """Keys, limits, webhooks, deliveries, uploads and credits over SQLAlchemy Core."""

    def __init__(self, engine: Engine, timeout: float = DEFAULT_DB_TIMEOUT) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.timeout = timeout
        # SQLite has one writer at a time anyway; queueing this process's writers on a
        # lock (FIFO-ish, bounded wait) instead of on SQLite's busy handler (sleep and
        # retry, unfair) keeps each write's wait short and predictable under load.
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._key_by_hash = FastQuery(engine, _KEY_BY_HASH)

    def _write(self) -> WriteTx:
        return WriteTx(self.engine, self.is_sqlite, self._write_lock, self.timeout)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for a read, with saturation reported as StoreBusyError."""
        with busy_as_503(self.is_sqlite), self.engine.connect() as conn:
            yield conn

    # -- keys ---------------------------------------------------------------
    def add_key(
        self, key_id: str, name: str, key_hash: str, prefix: str, simulate: str | None = None
    ) -> None:
        with self._write() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    key_hash=key_hash,
                    prefix=prefix,
                    created_at=now_ms(),
                    simulate=simulate,
                )
            )

    def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        return self._key_by_hash.one(key_hash=key_hash)

    def list_keys(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [dict(r._mapping) for r in rows]

    def revoke_key(self, key_id_or_prefix: str) -> int:
        with self._write() as conn:
            res = conn.execute(
                update(api_keys)
                .where(
                    or_(api_keys.c.id == key_id_or_prefix, api_keys.c.prefix == key_id_or_prefix)
                )
                .where(api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
        return int(res.rowcount)

    def get_key_limits(self, key_id: str) -> KeyLimits:
        with self.read() as conn:
            return limits_sql.read(conn, key_id)

    def set_key_limits(self, key_id: str, **overrides: int | float | None) -> None:
        with self._write() as conn:
            limits_sql.set_overrides(conn, key_id, overrides)

    # -- webhook deliveries (SQL in deliveries.py; docs/webhooks.md) ----------
    def set_key_webhook(
        self, key_id: str, url: str | None, secret: str | None = None
    ) -> dict[str, Any] | None:
        with self._write() as conn:
            return deliveries.set_key_webhook(conn, key_id, url, secret)

    def claim_deliveries(self, owner: str, limit: int, lease_seconds: float) -> list[Delivery]:
        with self._write() as conn:
            return deliveries.claim(conn, owner, limit, int(lease_seconds * 1000), now_ms())

    def record_delivery(self, delivery_id: str, owner: str, outcome: DeliveryOutcome) -> bool:
        with self._write() as conn:
            return deliveries.record(conn, delivery_id, owner, outcome)

    def deliveries_of(self, job_id: str) -> list[Delivery]:
        with self.read() as conn:
            return deliveries.of_job(conn, job_id)

    def webhook_secret(self, api_key_id: str) -> str | None:
        with self.read() as conn:
            return deliveries.secret(conn, api_key_id)

    def purge_deliveries(self, ended_before: int) -> int:
        with self._write() as conn:
            return deliveries.purge(conn, ended_before)

    # -- uploads ------------------------------------------------------------
    def add_upload(self, upload: Upload) -> None:
        with self._write() as conn:
            conn.execute(insert(uploads).values(**upload.__dict__))

    def get_upload(self, upload_id: str) -> Upload | None:
        if not valid_upload_id(upload_id):
            return None
        with self.read() as conn:
            row = conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()
        if row is None:
            return None
        m = row._mapping
        return Upload(**{k: m[k] for k in Upload.__dataclass_fields__})

    def complete_upload(self, upload_id: str, size: int, content_type: str | None) -> bool:
        now = now_ms()
        with self._write() as conn:
            res = conn.execute(
                update(uploads)
                .where(
                    uploads.c.id == upload_id,
                    uploads.c.completed_at.is_(None),
                    uploads.c.url_expires_at > now,
                )
                .values(completed_at=now, size=size, content_type=(content_type or None))
            )
        return bool(res.rowcount)

    def expired_upload_ids(self, limit: int = 500) -> list[str]:
        return self._expired(uploads, limit)

    def delete_uploads(self, ids: list[str]) -> int:
        return self._delete(uploads, ids)

    # -- retention: the sweeper's batches, for jobs (sql.py) and uploads alike --
    def _expired(self, table: Table, limit: int) -> list[str]:
        with self.read() as conn:
            rows = conn.execute(
                select(table.c.id).where(table.c.expires_at < now_ms()).limit(limit)
            ).all()
        return [r.id for r in rows]

    def _delete(self, table: Table, ids: list[str]) -> int:
        if not ids:
            return 0
        with self._write() as conn:
            res = conn.execute(delete(table).where(table.c.id.in_(ids)))
        return int(res.rowcount)

    # -- credits (jobs/store/ledger.py, docs/credits.md) ---------------------
    def top_up_credits(self, api_key_id: str, amount: int, note: str | None = None) -> Credits:
        with self._write() as conn:
            return ledger.top_up(conn, api_key_id, amount, note)

    def credits(self, api_key_id: str) -> Credits:
        with self.read() as conn:
            return ledger.credits(conn, api_key_id)

    def credit_history(
        self, api_key_id: str, limit: int = 50, before: int | None = None
    ) -> list[LedgerEntry]:
        with self.read() as conn:
            return ledger.history(conn, api_key_id, limit, before)
