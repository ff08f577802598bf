"""HMAC-signed URLs: the signature covers path and expiry, so neither can be altered."""

from __future__ import annotations

import hashlib
import hmac
import time

from ltxserve.wire_numbers import is_hex_digest, parse_uint


def sign(key: bytes, path: str, expires: int) -> str:
    msg = f"{path}\n{expires}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


EXPIRES_DIGITS = 12  # unix seconds until the year 33658; more is not an expiry


def verify(key: bytes, path: str, expires: str | None, signature: str | None) -> bool:
    """True when the signature matches and the expiry (unix seconds) is in the future.

    Both come straight from an unauthenticated query string: ``expires`` must be
    ASCII digits of bounded length and ``signature`` 64 lowercase hex digits
    before anything else is done with them (``compare_digest`` refuses non-ASCII
    text with a TypeError).
    """
    when = parse_uint(expires, EXPIRES_DIGITS)
    if when is None or not is_hex_digest(signature):
        return False
    assert signature is not None
    if not hmac.compare_digest(sign(key, path, when), signature):
        return False
    return when > time.time()


def signed_query(key: bytes, path: str, expires: int) -> str:
    return f"expires={expires}&signature={sign(key, path, expires)}"


def signed_url(key: bytes, base_url: str, path: str, expires: int) -> str:
    """``<base_url><path>?expires=..&signature=..``: the one shape of every signed URL
    this server hands out (results, upload targets)."""
    return f"{base_url}{path}?{signed_query(key, path, expires)}"
