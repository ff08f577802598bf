"""Terminal output and exit codes of the ``ltx`` CLI.

stdout carries the result only: the output path, the storage URI, a status summary,
or with ``--json`` exactly one JSON object. Scripts can capture it. Everything
else goes to stderr. That is a live rich progress display on a terminal, or plain
one-line notes when stderr is a pipe or a log file (no cursor tricks in CI logs).
With ``--json`` stderr stays silent: the one JSON object (result or error) says it all.

Exit codes (also in docs/sdk.md):

    0   success
    1   unexpected error (a bug, a local I/O error)
    2   usage: bad or missing option, no API key
    3   invalid_request_error (400), request_too_large (413), or rejected locally
        (bad field value, local file not found)
    4   authentication_error (401)
    5   insufficient_funds_error (402)
    6   not_found_error (404)
    7   content_filtered_error (422)
    8   rate_limit_error, concurrency_limit_error (429), after retries
    9   api_error (500), service_unavailable (503), other HTTP errors, after retries
    10  no answer from the server (connection error or timeout), after retries
    11  --timeout passed while the job was still pending or processing
    12  the job was cancelled (cancelled_error; ltxserve's cancel extension)
    69  the ``cli`` extra is not installed (ltxserve.entry_points, before this module)
    130 interrupted (Ctrl-C); a submitted job keeps running on the server

A job that fails exits with the code of its ``error.type``, as if the failure had
been an HTTP error.
"""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from ltxserve.client._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    ContentFilteredError,
    InsufficientFundsError,
    InvalidRequestError,
    JobCancelledError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    WaitTimeoutError,
)
from ltxserve.client.types import FailedJob, JobStatus, ProcessingJob

EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigurationError, 2),
    (ValidationError, 3),
    (FileNotFoundError, 3),
    (InvalidRequestError, 3),
    (RequestTooLargeError, 3),
    (AuthenticationError, 4),
    (InsufficientFundsError, 5),
    (NotFoundError, 6),
    (ContentFilteredError, 7),
    (RateLimitError, 8),
    (JobCancelledError, 12),
    (APIError, 9),
    (APIConnectionError, 10),
    (WaitTimeoutError, 11),
)

# Client-side failures have no wire type; these names fill the JSON error envelope.
_LOCAL_TYPES: tuple[tuple[type[BaseException], str], ...] = (
    (ConfigurationError, "configuration_error"),
    (ValidationError, "validation_error"),
    (FileNotFoundError, "file_not_found"),
    (APITimeoutError, "timeout_error"),
    (APIConnectionError, "connection_error"),
    (WaitTimeoutError, "wait_timeout"),
)


def exit_code(exc: BaseException) -> int:
    """The documented exit code for ``exc`` (first matching row), else 1."""
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)


def error_type(exc: BaseException) -> str:
    if isinstance(exc, APIError):
        return exc.type
    return next((name for cls, name in _LOCAL_TYPES if isinstance(exc, cls)), "error")


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Reporter:
    """Everything one command prints; use as a context manager around the work."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.err = Console(stderr=True)
        self._live = not json_mode and self.err.is_terminal
        if not self.err.is_terminal:  # a log or a pipe: one message, one line, never wrapped
            self.err.soft_wrap = True
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_note = ""

    def __enter__(self) -> Reporter:
        if self._live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.err,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    # -- progress -----------------------------------------------------------------

    def _show(
        self,
        description: str,
        *,
        completed: float = 0,
        total: float | None = None,
        detail: str = "",
    ) -> None:
        """Update the single progress line, or print a note when it changes."""
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task(description, total=total, detail=detail)
            self._progress.update(
                self._task, description=description, completed=completed, total=total, detail=detail
            )
        elif not self.json_mode and description != self._last_note:
            self._last_note = description
            self.err.print(description, highlight=False, markup=False)

    def step(self, text: str) -> None:
        self._show(text)

    def note(self, text: str) -> None:
        """A line that stays (e.g. the job id), printed above the live display."""
        if not self.json_mode:
            self.err.print(text, highlight=False, markup=False)

    def on_status(self, job: JobStatus) -> None:
        """``wait`` callback: queued, then processing (with a bar when the server tells)."""
        if isinstance(job, ProcessingJob):
            if job.progress is None:
                self._show("processing")
            elif self._progress is not None:
                self._show(
                    "processing", completed=job.progress, total=1.0, detail=f"{job.progress:.0%}"
                )
            else:  # plain notes: one line per tenth, not one per poll
                self._show(f"processing {int(job.progress * 10) * 10}%")
        elif job.status == "pending":
            self._show("queued")
        else:
            self._show(job.status, completed=1.0, total=1.0)

    def on_download(self, done: int, total: int | None) -> None:
        """``download`` callback: bytes so far, of the total when known."""
        detail = _human_bytes(done) + (f" / {_human_bytes(total)}" if total else "")
        self._show("downloading", completed=done, total=total or None, detail=detail)

    # -- results ------------------------------------------------------------------

    def result(self, payload: dict[str, Any], human: str) -> None:
        """The command's answer on stdout: JSON with --json, else ``human`` as is."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.json_mode:
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            sys.stdout.write(human + "\n")
        sys.stdout.flush()

    def error(self, exc: BaseException) -> int:
        """Report ``exc`` and return its exit code."""
        code = exit_code(exc)
        if isinstance(exc, APIError) and isinstance(exc.job, FailedJob):
            message, kind = exc.job.error.message, exc.job.error.type
        else:
            message = exc.message if isinstance(exc, APIError) else str(exc)
            kind = error_type(exc)
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.json_mode:
            payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
            if isinstance(exc, APIError) and exc.status_code is not None:
                payload["status_code"] = exc.status_code
            if isinstance(exc, APIError | WaitTimeoutError) and exc.job is not None:
                payload["job"] = exc.job.to_dict()
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            where = ""
            if isinstance(exc, APIError) and exc.status_code is not None:
                where = f" (HTTP {exc.status_code})"
            self.err.print(f"[bold red]error[/]{where}: {kind}: {message}", highlight=False)
            if isinstance(exc, WaitTimeoutError):
                self.err.print(f"the job continues on the server: id {exc.job.id}")
        return code
