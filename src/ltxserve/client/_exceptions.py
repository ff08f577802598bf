"""Exceptions raised by the LTX Video client.

Each documented error type has its own class. A caller can then write
``except ContentFilteredError`` and catch the error whether it came back as an HTTP
answer (the 422 of a submit) or as the ``error`` of a failed job
(``FailedJob.raise_for_status()``). The API uses one error vocabulary for both, so
the client does too.

    LtxError                                  anything this package raises on purpose
    +-- ConfigurationError                    no API key, unusable base URL
    +-- APIConnectionError                    no HTTP answer, even after retries
    |   +-- APITimeoutError                   ... because the request timed out
    +-- WaitTimeoutError                      wait() ran out of time; the job is still running
    +-- APIError                              an error envelope, or a failed job's error
        +-- InvalidRequestError        400    invalid_request_error
        +-- AuthenticationError        401    authentication_error
        +-- InsufficientFundsError     402    insufficient_funds_error
        +-- NotFoundError              404    not_found_error
        +-- RequestTooLargeError       413    request_too_large
        +-- ContentFilteredError       422    content_filtered_error
        +-- RateLimitError             429    rate_limit_error
        |   +-- ConcurrencyLimitError  429    concurrency_limit_error
        +-- InternalServerError        500    api_error
        +-- ServiceUnavailableError    503    service_unavailable
        +-- JobCancelledError                 cancelled_error (a failed job's error only)

``JobCancelledError`` is ltxserve's: a job ended by ``cancel`` (``DELETE
/v2/{endpoint}/{id}``, an extension) fails with ``cancelled_error``, a type that only
a status object carries, never an HTTP answer, so it is outside the types the two
trees share (``JOB_ERRORS_BY_TYPE``).

The ``APIError`` branch has the server's shape (``ltxserve.errors``, not imported
here: the client stands alone): one class per documented type, and
``ConcurrencyLimitError`` under ``RateLimitError`` on both sides, so a handler for
the rate limit catches both. The server refines a few statuses of its own routes
without new types (403 authentication_error for a bad signed URL, 409
invalid_request_error for a used upload URL, 504 api_error for a v1 timeout); they
arrive as the type's class with that ``status_code``.
tests/core/test_error_table.py holds the two tables equal.

An error is classified by its ``error.type`` first and by its HTTP status second.
Proxies and storage back ends can answer without an LTX envelope, and the status
code is still a good guess then. Anything left over becomes a plain ``APIError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ltxserve.client.types import JobStatus


class LtxError(Exception):
    """Base of every exception the client raises deliberately."""


class ConfigurationError(LtxError):
    """The client cannot be built as asked (e.g. no API key anywhere)."""


class APIConnectionError(LtxError):
    """The request never got an HTTP answer (DNS, refused, reset, timeout)."""


class APITimeoutError(APIConnectionError):
    """The request timed out; kept separate because a longer timeout may help."""


class WaitTimeoutError(LtxError):
    """``wait`` gave up before the job reached a terminal state.

    The job keeps running on the server, so ``job`` holds the last status seen. The
    caller can keep waiting, or record the id and come back later.
    """

    def __init__(self, message: str, *, job: JobStatus) -> None:
        super().__init__(message)
        self.job = job


class APIError(LtxError):
    """The server answered with an error envelope, or a job failed with one.

    ``status_code`` is ``None`` when the error comes from a failed job's ``error``
    object (the job itself was fetched with a 200).
    """

    type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: object | None = None,
        job: JobStatus | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        self.job = job

    def __str__(self) -> str:
        where = f"HTTP {self.status_code} " if self.status_code is not None else ""
        return f"{where}{self.type}: {self.message}"


class InvalidRequestError(APIError):
    type = "invalid_request_error"


class AuthenticationError(APIError):
    type = "authentication_error"


class InsufficientFundsError(APIError):
    type = "insufficient_funds_error"


class NotFoundError(APIError):
    type = "not_found_error"


class RequestTooLargeError(APIError):
    type = "request_too_large"


class ContentFilteredError(APIError):
    type = "content_filtered_error"


class RateLimitError(APIError):
    type = "rate_limit_error"


class ConcurrencyLimitError(RateLimitError):
    type = "concurrency_limit_error"


class InternalServerError(APIError):
    type = "api_error"


class ServiceUnavailableError(APIError):
    type = "service_unavailable"


ERRORS_BY_TYPE: dict[str, type[APIError]] = {
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
        InternalServerError,
        ServiceUnavailableError,
    )
}


class JobCancelledError(APIError):
    """The job was cancelled (``cancel``, ltxserve's ``DELETE`` extension)."""

    type = "cancelled_error"


JOB_ERRORS_BY_TYPE: dict[str, type[APIError]] = {JobCancelledError.type: JobCancelledError}
"""Types that only a failed job's ``error`` carries (no HTTP answer has them)."""

ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientFundsError,
    404: NotFoundError,
    413: RequestTooLargeError,
    422: ContentFilteredError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def error_class(error_type: str | None, status_code: int | None) -> type[APIError]:
    """Pick the class for an error: by wire type, then by status, else ``APIError``."""
    if error_type and error_type in ERRORS_BY_TYPE:
        return ERRORS_BY_TYPE[error_type]
    if error_type and status_code is None and error_type in JOB_ERRORS_BY_TYPE:
        return JOB_ERRORS_BY_TYPE[error_type]
    if status_code is not None and status_code in ERRORS_BY_STATUS:
        return ERRORS_BY_STATUS[status_code]
    return APIError


def error_from_response(response: httpx.Response, retry_after: float | None) -> APIError:
    """Build the exception for an error answer. The body must have been read."""
    body: Any = None
    error_type: str | None = None
    message = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text:
            message = text[:500]
    else:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            error_type = error.get("type") if isinstance(error.get("type"), str) else None
            if isinstance(error.get("message"), str):
                message = error["message"]
    cls = error_class(error_type, response.status_code)
    return cls(
        message,
        type=error_type,
        status_code=response.status_code,
        request_id=response.headers.get("x-request-id"),
        retry_after=retry_after,
        body=body,
    )
