"""Domain errors shared by every layer below the API.

The API layer maps each error's class onto its HTTP status and the documented
envelope; nothing here knows about HTTP, so the worker and the engines can raise
the same errors and have them recorded verbatim on a failed job. Each wire
``type`` has one class (``ERROR_TYPES``); a subclass keeps its parent's ``type``
and refines only the status, for the few answers of our own routes that the
hosted contract has no type for (the one table is ``ltxserve.api.errors.STATUS``).

    LtxError                        type                      HTTP
    +-- InvalidRequestError         invalid_request_error     400
    |   +-- MethodNotAllowedError                             405  with Allow
    |   +-- RequestTimeoutError                               408  headers too slow
    |   +-- UploadUsedError                                   409  second PUT to an upload URL
    |   +-- JobEndedError                                     409  DELETE of a job that ended
    |   +-- IdempotencyConflictError                          409  Idempotency-Key, other body
    |   +-- ClientClosedError                                 499  the client hung up
    +-- AuthenticationError         authentication_error      401
    |   +-- SignatureError                                    403  signed URL bad or expired
    +-- InsufficientFundsError      insufficient_funds_error  402
    +-- NotFoundError               not_found_error           404
    +-- RequestTooLargeError        request_too_large         413
    +-- ContentFilteredError        content_filtered_error    422
    +-- RateLimitError              rate_limit_error          429  Retry-After
    |   +-- ConcurrencyLimitError   concurrency_limit_error   429  Retry-After
    +-- ApiError                    api_error                 500
    |   +-- SyncTimeoutError                                  504  a v1 wait ran out
    +-- ServiceUnavailableError     service_unavailable       503
        +-- StoreBusyError                                    503  store saturated; Retry-After

One type is never an HTTP answer: ``cancelled_error`` (``CANCELLED_ERROR``) appears
only as the ``error.type`` of a status object, for a job ended by ``DELETE
/v2/{endpoint}/{id}`` (docs/api.md, "Cancel"), or for a job of the client-testing
mode told ``fail=cancelled_error``. No HTTP answer carries it, so it has no class here
and no row in the contract's table.

``ConcurrencyLimitError`` is a kind of ``RateLimitError`` (both 429, both with
Retry-After), as in the SDK's tree (``ltxserve.client``): a handler for the
rate limit catches both.

Other roots. These never reach an envelope as such: each is either turned into an
``LtxError`` at one named place, or stops a process with one line.

    ConfigError (config.py)               a setting that cannot work; the process stops
    +-- EngineUnavailable (engines)       unknown engine name, module missing
    +-- RegistryError (engines.ltx)       unusable model registry or weights (also ValueError)
    StorageError (storage.base)           the blob store failed
    +-- BlobNotFound                      no such key: 404 on /files, api_error in v1
    FetchRefused (inputs.fetch)           an input URL may not or could not be fetched:
                                          InvalidRequestError("<field>: ...") in inputs
    BoxProblem (media.boxes)              a file's boxes claim more than its bytes:
                                          InvalidRequestError in media.probe and inputs
    KeyMatchError (keys, ValueError)      ``keys revoke`` names no key or several (CLI)
    InvalidTransition (jobs.states)       a programming error: a job edge that does not exist
    RunnerCrashed, RunnerStartFailed      the runner child died or could not start (worker)
    JobStopped (runner)                   an outcome, not an error: the worker stopped the job
    SimulatedFailure (simulate)           an outcome too: the end a simulated job was told
                                          to have (``fail=``), recorded as its error
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


class RequestTimeoutError(InvalidRequestError):
    """The request's headers did not arrive in time (slow-client defence)."""


class UploadUsedError(InvalidRequestError):
    """A file was already uploaded to this upload URL: one PUT per URL."""


class JobEndedError(InvalidRequestError):
    """A cancel of a job that had already completed, or failed other than by a cancel."""


class IdempotencyConflictError(InvalidRequestError):
    """An ``Idempotency-Key`` this API key already used, with another request: the
    job it made stands, and this request makes none (docs/api.md, "Idempotency")."""


class MethodNotAllowedError(InvalidRequestError):
    """The path exists but not with this method; ``allow`` lists the methods it takes."""

    def __init__(self, message: str, *, allow: str | None = None) -> None:
        super().__init__(message)
        self.allow = allow


class ClientClosedError(InvalidRequestError):
    """The client hung up before its answer was ready; the answer is for the access log."""


class AuthenticationError(LtxError):
    type = "authentication_error"


class SignatureError(AuthenticationError):
    """A signed URL's signature is wrong or its expiry has passed (no API key is involved)."""


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


class ConcurrencyLimitError(RateLimitError):
    type = "concurrency_limit_error"


class ApiError(LtxError):
    type = "api_error"


class SyncTimeoutError(ApiError):
    """A synchronous (v1) operation did not finish within ``sync_timeout_seconds``."""


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


CANCELLED_ERROR = "cancelled_error"
"""The ``error.type`` of a cancelled job's status object; never an HTTP answer."""

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
