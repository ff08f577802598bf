"""Idempotency-Key: what a key may look like, what makes two requests the same.

A submit that carries ``Idempotency-Key`` is remembered for that API key for
``LTXSERVE_IDEMPOTENCY_SECONDS`` (24 h): the same key with the same request
answers the job the first one made (same id, 202) and makes none; the same key
with another request is a 409 (``IdempotencyConflictError``). The lookup and
the record are one step of the insert transaction (jobs/store/idempotency.py),
so API processes and concurrent duplicates agree. Only an accepted submit (202)
is remembered: a refused one (400, 429, 503...) may be retried with its key.

"The same request" is the same method and path (``POST /v2/text-to-video`` is not
``POST /v1/text-to-video``) and the same JSON value: the body is hashed in a
canonical form (keys sorted, no whitespace), so key order and spacing do not
matter, but ``5`` and ``5.0`` do.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from ltxserve.errors import IdempotencyConflictError, InvalidRequestError

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
_VALID = re.compile(rf"[\x21-\x7e]{{1,{MAX_LENGTH}}}")  # printable ASCII, no spaces


def parse_key(value: str | None) -> str | None:
    """The header's key, None when absent; a malformed one is a 400."""
    if value is None:
        return None
    if not _VALID.fullmatch(value):
        raise InvalidRequestError(
            f"{HEADER} must be 1 to {MAX_LENGTH} printable ASCII characters without "
            "spaces (a UUID is a good key)"
        )
    return value


def request_hash(path: str, body: Any) -> str:
    """sha256 of the operation and the canonical JSON of its body (hex)."""
    digest = hashlib.sha256(f"POST {path}\n".encode())
    digest.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def conflict(key: str) -> IdempotencyConflictError:
    return IdempotencyConflictError(
        f"{HEADER} {key!r} was already used with another request (a different "
        "endpoint or body); use a new key for a new request"
    )
