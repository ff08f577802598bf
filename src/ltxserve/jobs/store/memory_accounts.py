"""MemoryAccounts: what the in-memory store keeps for an API key beside its jobs.

The key and its limits, its webhook and the deliveries sent to it, its uploads and
its credits (``_Ledger``, as ledger.py keeps them in SQL), under the one lock that
makes each of the store's methods one transaction. ``memory.MemoryJobStore``
extends it with the job queue, as ``sql.SqlJobStore`` extends ``SqlAccounts``.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import orjson

from ltxserve.jobs.lifecycle.states import JobStatus
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
from ltxserve.jobs.store.deliveries import PENDING


def json_copy(value: Any) -> Any:
    """What a database would hand back for ``value``: a fresh copy, JSON's types only."""
    return None if value is None else orjson.loads(orjson.dumps(value))


class DuplicateError(Exception):
    """An insert whose primary or unique key is taken (the SQL store's IntegrityError)."""


class _Ledger:
    """Credits in memory, as jobs/store/ledger.py keeps them in SQL; the store's lock
    is held by every caller."""

    def __init__(self) -> None:
        self.balances: dict[str, Credits] = {}
        self.entries: list[LedgerEntry] = []

    def _add(
        self, key: str, kind: str, amount: int, job_id: str | None = None, note: str | None = None
    ) -> None:
        if job_id is not None and any(
            e.job_id == job_id and (e.kind == kind or {e.kind, kind} == {"charge", "release"})
            for e in self.entries
        ):  # the SQL ledger's partial unique indexes
            raise DuplicateError(f"job {job_id} already has a {kind} entry")
        balance = self.balances.get(key, Credits(0, 0)).balance
        entry = LedgerEntry(
            len(self.entries) + 1, key, kind, amount, balance, job_id, note, now_ms()
        )
        self.entries.append(entry)

    def hold(self, key: str, job_id: str, amount: int) -> bool:
        now = self.balances.get(key, Credits(0, 0))
        if key not in self.balances or now.balance < amount:
            return False
        self.balances[key] = Credits(now.balance - amount, now.held + amount)
        self._add(key, "hold", amount, job_id)
        return True

    def settle(self, job_id: str, status: JobStatus) -> None:
        mine = [e for e in self.entries if e.job_id == job_id]
        held = next((e for e in mine if e.kind == "hold"), None)
        if held is None or any(e.kind in ("charge", "release") for e in mine):
            return
        now = self.balances[held.api_key_id]
        charge = status == JobStatus.COMPLETED
        back = 0 if charge else held.amount
        self.balances[held.api_key_id] = Credits(now.balance + back, now.held - held.amount)
        self._add(held.api_key_id, "charge" if charge else "release", held.amount, job_id)

    def top_up(self, key: str, amount: int, note: str | None) -> Credits:
        now = self.balances.get(key, Credits(0, 0))
        if now.balance + amount < 0:
            raise ValueError(f"the balance is {now.balance}; it cannot go below 0")
        self.balances[key] = Credits(now.balance + amount, now.held)
        self._add(key, "top_up", amount, note=note)
        return self.balances[key]


class MemoryAccounts:
    """Keys, limits, webhooks, deliveries, uploads and credits in dicts, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._uploads: dict[str, Upload] = {}
        self._limits: dict[str, KeyLimits] = {}  # the SQL stores' key_limits rows
        self._deliveries: dict[str, Delivery] = {}  # insertion order = creation order
        self._delivery_leases: dict[str, tuple[str, int]] = {}  # id -> (owner, expires)
        self._ledger = _Ledger()

    # -- keys ---------------------------------------------------------------
    def add_key(
        self, key_id: str, name: str, key_hash: str, prefix: str, simulate: str | None = None
    ) -> None:
        with self._lock:
            if key_id in self._keys or any(k["key_hash"] == key_hash for k in self._keys.values()):
                raise DuplicateError(f"key {key_id} or its hash exists")
            self._keys[key_id] = {
                "id": key_id,
                "name": name,
                "key_hash": key_hash,
                "prefix": prefix,
                "created_at": now_ms(),
                "revoked_at": None,
                "simulate": simulate,
                "webhook_url": None,
                "webhook_secret": None,
            }

    def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        with self._lock:
            for k in self._keys.values():
                if k["key_hash"] == key_hash:
                    return dict(k)
        return None

    def list_keys(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(k) for k in sorted(self._keys.values(), key=lambda k: k["created_at"])]

    def revoke_key(self, key_id_or_prefix: str) -> int:
        n = 0
        with self._lock:
            for k in self._keys.values():
                if key_id_or_prefix in (k["id"], k["prefix"]) and k["revoked_at"] is None:
                    k["revoked_at"] = now_ms()
                    n += 1
        return n

    def get_key_limits(self, key_id: str) -> KeyLimits:
        with self._lock:
            return self._limits.get(key_id, KeyLimits())

    def set_key_limits(self, key_id: str, **overrides: int | float | None) -> None:
        unknown = set(overrides) - {"max_unfinished", "rate_per_second", "rate_burst"}
        if unknown:
            raise ValueError(f"not a key limit: {sorted(unknown)}")
        with self._lock:
            old = self._limits.get(key_id, KeyLimits())
            self._limits[key_id] = replace(old, **overrides)  # type: ignore[arg-type]

    # -- webhook deliveries -----------------------------------------------------
    def set_key_webhook(
        self, key_id: str, url: str | None, secret: str | None = None
    ) -> dict[str, Any] | None:
        with self._lock:
            k = self._keys.get(key_id)
            if k is None:
                return None
            k["webhook_url"] = url
            if secret is not None:
                k["webhook_secret"] = secret
            return dict(k)

    def claim_deliveries(self, owner: str, limit: int, lease_seconds: float) -> list[Delivery]:
        now = now_ms()
        with self._lock:
            due = [
                d
                for d in self._deliveries.values()
                if d.state == PENDING
                and d.next_attempt_at is not None
                and d.next_attempt_at <= now
                and self._delivery_leases.get(d.id, ("", 0))[1] < now
            ]
            due.sort(key=lambda d: d.next_attempt_at or 0)
            for d in due[:limit]:
                self._delivery_leases[d.id] = (owner, now + int(lease_seconds * 1000))
            return [replace(d, log=json_copy(d.log)) for d in due[:limit]]

    def record_delivery(self, delivery_id: str, owner: str, outcome: DeliveryOutcome) -> bool:
        with self._lock:
            d = self._deliveries.get(delivery_id)
            lease = self._delivery_leases.get(delivery_id)
            if d is None or d.state != PENDING or lease is None or lease[0] != owner:
                return False
            del self._delivery_leases[delivery_id]
            self._deliveries[delivery_id] = replace(
                d, **{**outcome.__dict__, "log": json_copy(outcome.log)}
            )
            return True

    def deliveries_of(self, job_id: str) -> list[Delivery]:
        with self._lock:
            found = [d for d in self._deliveries.values() if d.job_id == job_id]
        return [replace(d, log=json_copy(d.log)) for d in found]

    def webhook_secret(self, api_key_id: str) -> str | None:
        with self._lock:
            k = self._keys.get(api_key_id)
            return str(k["webhook_secret"]) if k and k.get("webhook_secret") else None

    def purge_deliveries(self, ended_before: int) -> int:
        with self._lock:
            gone = [
                d.id
                for d in self._deliveries.values()
                if d.state != PENDING
                and d.completed_at is not None
                and d.completed_at < ended_before
            ]
            for i in gone:
                del self._deliveries[i]
                self._delivery_leases.pop(i, None)
        return len(gone)

    # -- uploads ------------------------------------------------------------
    def add_upload(self, upload: Upload) -> None:
        with self._lock:
            if upload.id in self._uploads:
                raise DuplicateError(f"upload {upload.id} exists")
            self._uploads[upload.id] = upload

    def get_upload(self, upload_id: str) -> Upload | None:
        if not valid_upload_id(upload_id):
            return None
        with self._lock:
            return self._uploads.get(upload_id)

    def complete_upload(self, upload_id: str, size: int, content_type: str | None) -> bool:
        now = now_ms()
        with self._lock:
            up = self._uploads.get(upload_id)
            if up is None or up.completed_at is not None or up.url_expires_at <= now:
                return False
            self._uploads[upload_id] = replace(
                up, completed_at=now, size=size, content_type=content_type or None
            )
            return True

    def expired_upload_ids(self, limit: int = 500) -> list[str]:
        now = now_ms()
        with self._lock:
            return [u.id for u in self._uploads.values() if u.expires_at < now][:limit]

    def delete_uploads(self, ids: list[str]) -> int:
        with self._lock:
            return sum(self._uploads.pop(i, None) is not None for i in ids)

    # -- credits (docs/credits.md) ---------------------------------------------
    def top_up_credits(self, api_key_id: str, amount: int, note: str | None = None) -> Credits:
        with self._lock:
            return self._ledger.top_up(api_key_id, amount, note)

    def credits(self, api_key_id: str) -> Credits:
        with self._lock:
            return self._ledger.balances.get(api_key_id, Credits(0, 0))

    def credit_history(
        self, api_key_id: str, limit: int = 50, before: int | None = None
    ) -> list[LedgerEntry]:
        with self._lock:
            mine = [
                e
                for e in reversed(self._ledger.entries)
                if e.api_key_id == api_key_id and (before is None or e.id < before)
            ]
        return mine[:limit]
