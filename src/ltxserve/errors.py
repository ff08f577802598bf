"""Domain errors shared by every layer below the API.

The API layer maps each error's ``type`` onto the documented HTTP status and
envelope; nothing here knows about HTTP, so the worker and the engines can raise
the same errors and have them recorded verbatim on a failed job.

    LtxError                      type            HTTP (mapped in ltxserve.api.errors)
    +-- InvalidRequestError       invalid_request_error   400
    +-- AuthenticationError       authentication_error    401
    +-- InsufficientFundsError    insufficient_funds_error 402
    +-- NotFoundError             not_found_error         404
    +-- RequestTooLargeError      request_too_large       413
    +-- ContentFilteredError      content_filtered_error  422
    +-- RateLimitError            rate_limit_error        429
    +-- ConcurrencyLimitError     concurrency_limit_error 429
    +-- ApiError                  api_error               500
    +-- ServiceUnavailableError   service_unavailable     503
        +-- StoreBusyError        (the job store is saturated; Retry-After)
"""

from __future__ import annotations


class LtxError(Exception):
    """Base of every error that ends up in an error envelope or a failed job."""

    type: str = "api_error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidRequestError(LtxError):
    type = "invalid_request_error"


class AuthenticationError(LtxError):
    type = "authentication_error"


class InsufficientFundsError(LtxError):
    type = "insufficient_funds_error"


class NotFoundError(LtxError):
    type = "not_found_error"


class RequestTooLargeError(LtxError):
    type = "request_too_large"


class ContentFilteredError(LtxError):
    type = "content_filtered_error"


class RateLimitError(LtxError):
    type = "rate_limit_error"


class ConcurrencyLimitError(LtxError):
    type = "concurrency_limit_error"


class ApiError(LtxError):
    type = "api_error"


class ServiceUnavailableError(LtxError):
    type = "service_unavailable"


class StoreBusyError(ServiceUnavailableError):
    """The job store could not be reached in bounded time (pool or write lock saturated).

    Raised by the store instead of waiting indefinitely, so a saturated database
    answers a quick 503 with Retry-After and the client retries, never a 500.
    """

    def __init__(
        self, message: str = "The service is busy; retry shortly", *, retry_after: int | None = 1
    ) -> None:
        super().__init__(message, retry_after=retry_after)


ERROR_TYPES: dict[str, type[LtxError]] = {
    cls.type: cls
    for cls in (
        InvalidRequestError,
        AuthenticationError,
        InsufficientFundsError,
        NotFoundError,
        RequestTooLargeError,
        ContentFilteredError,
        RateLimitError,
        ConcurrencyLimitError,
        ApiError,
        ServiceUnavailableError,
    )
}


def error_from_type(type_: str, message: str) -> LtxError:
    """Rebuild a domain error from its wire form (used across process boundaries)."""
    return ERROR_TYPES.get(type_, ApiError)(message)
