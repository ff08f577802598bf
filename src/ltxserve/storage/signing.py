"""HMAC-signed URLs: the signature covers path and expiry, so neither can be altered."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(key: bytes, path: str, expires: int) -> str:
    msg = f"{path}\n{expires}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def verify(key: bytes, path: str, expires: str | None, signature: str | None) -> bool:
    """True when the signature matches and the expiry (unix seconds) is in the future."""
    if not expires or not signature or not expires.isdigit():
        return False
    if not hmac.compare_digest(sign(key, path, int(expires)), signature):
        return False
    return int(expires) > time.time()


def signed_query(key: bytes, path: str, expires: int) -> str:
    return f"expires={expires}&signature={sign(key, path, expires)}"
