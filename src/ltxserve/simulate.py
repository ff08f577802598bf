"""Client-testing mode: make a job fail, linger, or have its submit refused, on purpose.

App developers point their client at ltxserve to exercise its error handling, which
no hosted API lets them do. It is off unless a key allows it
(``ltxserve keys create --simulate ...``); a request from such a key may also carry
the ``X-Ltxserve-Simulate`` header. Directives, comma-separated::

    submit=429 | 500 | 503 | <error type>   answer the submit with that error (no job)
    retry_after=<s>      Retry-After on that answer (default 1 for 429 and 503)
    processing=<s>       the job stays processing this long (progress rising)
    fail=<error type>    the job then fails with this error instead of completing
                         (or with cancelled_error, as a cancelled job ends)
    message=<text>       the error's message (no commas)

``allow`` alone means no directive (a key that simulates only on request), and
``off`` in the header turns the key's own directives off for one request. Parsing
is here; the API answers the submit errors, the runner plays the job's part
(``run``), so it works the same for every engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ltxserve.errors import (
    CANCELLED_ERROR,
    ERROR_TYPES,
    InvalidRequestError,
    LtxError,
    error_from_type,
)

HEADER = "X-Ltxserve-Simulate"
MAX_SECONDS = 3600.0
SUBMIT_STATUSES = {"429": "rate_limit_error", "500": "api_error", "503": "service_unavailable"}
MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "Invalid API key",
    "insufficient_funds_error": "Insufficient funds. Required: 120 credits",
    "not_found_error": "Not found",
    "request_too_large": "Request body is too large",
    "content_filtered_error": "Content is filtered due to policy restrictions",
    "rate_limit_error": "Rate limit exceeded",
    "concurrency_limit_error": "Too many concurrent generations",
    "api_error": "An unexpected error occurred",
    "service_unavailable": "Service temporarily unavailable",
    CANCELLED_ERROR: "The job was cancelled",  # fail= only: never an HTTP answer
}
T = TypeVar("T")


@dataclass(frozen=True)
class Simulation:
    submit: str | None = None  # error type the submit answers with
    retry_after: int | None = None
    processing: float = 0.0  # seconds the job stays processing
    fail: str | None = None  # error type the job fails with
    message: str | None = None

    def submit_error(self) -> LtxError | None:
        if self.submit is None:
            return None
        retry = self.retry_after
        if retry is None and self.submit in (
            "rate_limit_error",
            "concurrency_limit_error",
            "service_unavailable",
        ):
            retry = 1
        exc = error_from_type(self.submit, _message(self.submit, self.message))
        exc.retry_after = retry
        return exc

    def job_part(self) -> dict[str, Any] | None:
        """What the runner needs, stored with the job's request (None: nothing to play)."""
        if not self.processing and self.fail is None:
            return None
        return {
            "processing": self.processing,
            "fail": self.fail,
            "message": _message(self.fail, self.message) if self.fail else None,
        }


def _message(type_: str, custom: str | None) -> str:
    return custom or f"{MESSAGES.get(type_, 'Simulated error')} (simulated)"


def _error_type(name: str, value: str, source: str) -> str:
    # A job may also end as a cancelled one does (the cancel extension's error.type),
    # for a client's cancel handling; a submit is never answered with it.
    types = [*ERROR_TYPES, CANCELLED_ERROR] if name == "fail" else list(ERROR_TYPES)
    if value in types:
        return value
    raise InvalidRequestError(f"{source}: {name} must be one of {', '.join(types)} (got {value!r})")


class SimulatedFailure(Exception):
    """The end a simulated job was told to have (``fail=``), raised in the runner, which
    records its type and message as the job's error. Not an LtxError: ``cancelled_error``
    has no class there (it is never an HTTP answer), and this is an outcome played on
    purpose, not a fault."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message


def _seconds(name: str, value: str, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_SECONDS:  # also refuses nan
        raise InvalidRequestError(
            f"{source}: {name} must be a number of seconds from 0 to {MAX_SECONDS:g}"
        )
    return seconds


def parse(text: str, source: str = HEADER) -> Simulation | None:
    """Directives -> Simulation; None for ``off``. Errors name ``source`` and the part."""
    text = text.strip()
    if text.lower() == "off":
        return None
    if text.lower() in ("allow", ""):
        return Simulation()
    fields: dict[str, Any] = {}
    for part in text.split(","):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not value:
            raise InvalidRequestError(f"{source}: expected name=value, got {part.strip()!r}")
        if name in fields:
            raise InvalidRequestError(f"{source}: {name} is given twice")
        if name == "submit":
            fields[name] = SUBMIT_STATUSES.get(value) or _error_type(name, value, source)
        elif name == "fail":
            fields[name] = _error_type(name, value, source)
        elif name == "processing":
            fields[name] = _seconds(name, value, source)
        elif name == "retry_after":
            fields[name] = int(_seconds(name, value, source))
        elif name == "message":
            fields[name] = value[:500]
        else:
            raise InvalidRequestError(
                f"{source}: unknown directive {name!r}; use submit, retry_after, processing, "
                "fail or message"
            )
    return Simulation(**fields)


def for_request(key_simulate: str | None, header: str | None) -> Simulation | None:
    """The simulation for one request: the header's if given, else the key's default.

    A key without the simulate flag never simulates, and a header from it is a 400,
    so that a forgotten header in production code is noticed rather than ignored.
    """
    if key_simulate is None:
        if header is not None:
            raise InvalidRequestError(
                f"{HEADER}: this API key does not allow simulation "
                "(create one with `ltxserve keys create --simulate ...`)"
            )
        return None
    return parse(header if header is not None else key_simulate)


def run(
    part: dict[str, Any],
    progress: Callable[[float], None],
    generate: Callable[[Callable[[float], None]], T],
) -> T:
    """The job's simulated part, in the runner: linger, then fail or generate for real.

    Progress rises over the wait (to half when the engine runs afterwards), reported
    every 0.1 s, so the worker's stop requests are heard as for a real job.
    """
    seconds = float(part.get("processing") or 0)
    fail = part.get("fail")
    share = 1.0 if fail else 0.5
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        progress(min(0.99, share * elapsed / seconds))
        time.sleep(min(0.1, seconds - elapsed))
    if fail:
        raise SimulatedFailure(str(fail), str(part.get("message") or _message(fail, None)))
    if not seconds:
        return generate(progress)
    return generate(lambda f: progress(share + (1 - share) * f))
