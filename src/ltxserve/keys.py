"""API keys: created once, shown once, stored as a SHA-256 hash.

Keys are 32 random bytes, so a fast hash is enough (no password stretching needed);
the prefix is kept in clear so an operator can tell keys apart in ``keys list``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ltxserve.errors import AuthenticationError
from ltxserve.jobs.store.base import JobStore

KEY_PREFIX = "ltxsk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: JobStore, name: str = "", simulate: str | None = None, webhook_url: str | None = None
) -> str:
    """A new key. ``simulate`` (directives or "allow") makes it a client-testing key;
    ``webhook_url`` is the default callback_url of its jobs (docs/webhooks.md). Every
    key gets a webhook signing secret of its own (``keys webhook`` shows it)."""
    if simulate is not None:
        from ltxserve.simulate import parse

        parse(simulate, "--simulate")  # refuse bad directives now, not on every request
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = secrets.token_hex(8)
    store.add_key(key_id, name, hash_key(token), token[: len(KEY_PREFIX) + 6], simulate)
    set_webhook(store, key_id, webhook_url, rotate_secret=True)
    return token


def set_webhook(
    store: JobStore, key_id: str, url: str | None, *, rotate_secret: bool = False
) -> dict[str, Any]:
    """Set (or clear, with None) a key's default webhook URL, with a new signing secret
    on request; the key's row afterwards."""
    from ltxserve.webhooks.signing import new_secret

    row = store.set_key_webhook(key_id, url, new_secret() if rotate_secret else None)
    if row is None:
        raise KeyMatchError(f"no key {key_id}")
    return row


MIN_MATCH = 4
"""Shortest id or prefix ``keys revoke`` accepts (as git's short hashes)."""


def redact(text: str) -> str:
    """What may be printed of something a user typed that may be a whole secret key."""
    shown = len(KEY_PREFIX) + 6  # the prefix `keys list` shows
    return text if len(text) <= shown else text[:shown] + "..."


class KeyMatchError(ValueError):
    """``keys revoke`` was given a reference that names no key, or several."""

    def __init__(self, message: str, candidates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []


def find_key(store: JobStore, ref: str) -> dict[str, Any]:
    """The one active key that ``ref`` names, or raise KeyMatchError.

    ``ref`` is a whole secret key, or any unambiguous start (``MIN_MATCH`` characters
    or more) of an id or a prefix as ``keys list`` shows them (a trailing ``...``
    is ignored). Error messages never repeat a secret: only ``redact(ref)``.
    """
    ref = ref.strip().removesuffix("...")
    shown = redact(ref)
    keys = store.list_keys()
    if ref.startswith(KEY_PREFIX) and len(ref) > len(KEY_PREFIX) + 6:  # a secret, whole
        digest = hash_key(ref)
        hits = [k for k in keys if k["key_hash"] == digest]
    elif len(ref) < MIN_MATCH:
        raise KeyMatchError(
            f"{shown!r} is too short: give at least {MIN_MATCH} characters "
            "of an id or prefix from `keys list`"
        )
    else:
        hits = [k for k in keys if str(k["id"]).startswith(ref) or str(k["prefix"]).startswith(ref)]
    active = [k for k in hits if k["revoked_at"] is None]
    if not active:
        why = "is already revoked" if hits else "matches no key"
        raise KeyMatchError(f"{shown} {why} (see `ltxserve keys list`)")
    if len(active) > 1:
        raise KeyMatchError(
            f"{shown} matches {len(active)} keys; give more of the id or prefix", active
        )
    return active[0]


@dataclass
class KeyInfo:
    key_id: str
    simulate: str | None  # client-testing directives; None: the key never simulates
    webhook_url: str | None = None  # default callback_url of the key's jobs


@dataclass
class _Cached:
    key_id: str
    until: float
    simulate: str | None = None
    webhook_url: str | None = None


class KeyChecker:
    """Looks keys up in the store, with a short positive cache for the poll path.

    The cache is only an optimisation: a revoked key stops working everywhere
    within ``cache_seconds`` (0 disables it).
    """

    def __init__(self, store: JobStore, cache_seconds: float) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}

    def check(self, authorization: str | None) -> str:
        """Return the key id for an ``Authorization`` header value or raise."""
        return self.info(authorization).key_id

    def info(self, authorization: str | None) -> KeyInfo:
        """The key behind an ``Authorization`` header value, or raise."""
        if not authorization:
            raise AuthenticationError("Missing authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Invalid API key")
        digest = hash_key(token.strip())
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit and hit.until > now:
            return KeyInfo(hit.key_id, hit.simulate, hit.webhook_url)
        row = self.store.key_by_hash(digest)
        if row is None or row["revoked_at"] is not None:
            self._cache.pop(digest, None)
            raise AuthenticationError("Invalid API key")
        if self.cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = _Cached(
                row["id"], now + self.cache_seconds, row.get("simulate"), row.get("webhook_url")
            )
        return KeyInfo(str(row["id"]), row.get("simulate"), row.get("webhook_url"))
