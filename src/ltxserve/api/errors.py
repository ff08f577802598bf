"""Domain errors -> the documented error envelope. The only place that knows the status codes.

``STATUS`` maps each error class to its HTTP status; an error takes the status of
the nearest class in its MRO that the table names, so a subclass without an entry
answers as its parent does. The documented types (``ERROR_TYPES``) answer the
contract's status; the few subclasses with a status of their own (403 signature,
409 upload used, job ended or idempotency key reused, 499 client closed, 504 sync
timeout, ...) keep their parent's wire ``type``. Routes raise these errors; code that
must answer before routing (the middleware, the header deadline) builds the answer
from the same table.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ltxserve.errors import (
    ERROR_TYPES,
    ApiError,
    AuthenticationError,
    ClientClosedError,
    ConcurrencyLimitError,
    ContentFilteredError,
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidRequestError,
    JobEndedError,
    LtxError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    ServiceUnavailableError,
    SignatureError,
    SyncTimeoutError,
    UploadUsedError,
)

STATUS: dict[type[LtxError], int] = {
    LtxError: 500,
    InvalidRequestError: 400,
    MethodNotAllowedError: 405,
    RequestTimeoutError: 408,
    UploadUsedError: 409,
    JobEndedError: 409,
    IdempotencyConflictError: 409,
    ClientClosedError: 499,
    AuthenticationError: 401,
    SignatureError: 403,
    InsufficientFundsError: 402,
    NotFoundError: 404,
    RequestTooLargeError: 413,
    ContentFilteredError: 422,
    RateLimitError: 429,
    ConcurrencyLimitError: 429,
    ApiError: 500,
    SyncTimeoutError: 504,
    ServiceUnavailableError: 503,
}

# The status of each documented wire type (what a bare status tells a client).
TYPE_STATUS: dict[str, int] = {type_: STATUS[cls] for type_, cls in ERROR_TYPES.items()}


def status_of(error: LtxError | type[LtxError]) -> int:
    """The HTTP status of an error (or error class): its nearest class in ``STATUS``."""
    cls = error if isinstance(error, type) else type(error)
    for klass in cls.__mro__:
        if klass in STATUS:
            return STATUS[klass]
    return STATUS[LtxError]


def envelope(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


def http_exception_response(status_code: int, detail: str) -> Response:
    """Starlette's own HTTPException (other than 404/405) keeps its status, with the
    envelope: invalid_request_error for a 4xx, api_error for a 5xx."""
    type_ = "invalid_request_error" if status_code < 500 else "api_error"
    return Response(envelope(type_, detail), status_code=status_code, media_type="application/json")


def ltx_error_response(exc: LtxError) -> Response:
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, MethodNotAllowedError) and exc.allow:
        headers["Allow"] = exc.allow
    return Response(
        envelope(exc.type, exc.message),
        status_code=status_of(exc),
        media_type="application/json",
        headers=headers or None,
    )


class JSONBytes(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(orjson.dumps(content), status_code=status_code)
