"""Everything ``Client`` and ``AsyncClient`` share that does no I/O.

The two clients differ only in how they wait (``time.sleep`` or ``asyncio.sleep``)
and which httpx client they drive. The decisions live here, once: retry or not,
how long to back off, which headers to send where, what a local path is, where a
download goes. The sync and async code cannot drift apart on them.

Retry policy (API-NOTES "Errors"): 429, 500, 503 and network errors are retried
with exponential backoff and jitter, up to ``max_retries`` times. A ``Retry-After``
header replaces the backoff, unless it asks for more than ``max_retry_after``
seconds: then the error is raised at once with ``retry_after`` set, because
sleeping for minutes inside a library call surprises people more than an
exception does. 400, 401, 402, 404, 413 and 422 are never retried.

The synchronous v1 calls (``generate_sync``) keep their connection open for the
whole generation, and a request that reached the server has started one. So
they retry a network error only when it happened before the request was sent
(connection refused, connect or pool timeout), and of the statuses only 429 and
503; a dropped or timed-out answer, or a 500 (the generation failed), is raised,
since a resent request would generate the video a second time.
"""

from __future__ import annotations

import logging
import os
import random
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from ltxserve import __version__
from ltxserve.client._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
)
from ltxserve.client.types import (
    CompletedJob,
    EndpointName,
    JobStatus,
    ProcessingJob,
    RequestModel,
    Uri,
)

log = logging.getLogger("ltxserve.client")

DEFAULT_BASE_URL = "https://api.ltx.video"
DEFAULT_POLL_INTERVAL = 5.0  # what the hosted docs tell clients to use: the ceiling
FIRST_POLL_DELAY = 0.5  # adaptive polling starts here and grows by half each poll
POLL_GROWTH = 1.5
PROGRESS_POLL_DELAY = 1.0  # while a watched job reports progress (ltxserve's extension)
DEFAULT_WAIT_TIMEOUT = 1800.0
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
RETRY_STATUSES = frozenset({429, 500, 503})
SYNC_ENDPOINTS: frozenset[EndpointName] = frozenset(
    {"text-to-video", "image-to-video", "audio-to-video", "retake", "extend"}
)
"""The endpoints that also have a synchronous /v1 form."""
UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Network errors that mean the request never reached the server."""
CHUNK_SIZE = 1 << 20
IDEMPOTENCY_HEADER = "Idempotency-Key"
AUTO_KEY_PREFIX = "ltxserve-client-"
"""Keys the client makes for a submit that has none of the caller's (see ``_submit_headers``)."""

StatusCallback = Callable[[JobStatus], None]
"""Called with every status object ``wait`` fetches (for progress displays)."""
ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None when the server sends no length)."""

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # 2+ chars, so "C:\x" is a path


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def local_file(value: Uri) -> Path | None:
    """The local file a ``*_uri`` value names, or None if it is a URI to pass on.

    A ``Path`` is always a file. A string with a scheme (``https:``, ``data:``,
    ``ltx:``...) is a URI. Any other string must name an existing file. A typo is
    reported here, before a job is paid for.
    """
    if isinstance(value, Path):
        path = value
    elif _SCHEME.match(value):
        return None
    else:
        path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def default_filename(job: CompletedJob, url: str) -> str:
    """``<job id>.mp4``, or ``.zip`` for HDR frame archives."""
    suffix = Path(urlsplit(url).path).suffix
    if not suffix:
        hdr = "exr_frames_url" in job.result and "video_url" not in job.result
        suffix = ".zip" if hdr else ".mp4"
    return f"{job.id}{suffix}"


_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)


class BaseClient(Generic[_HttpT]):
    """Configuration and policy shared by the sync and async clients.

    Arguments win over the environment, and the environment wins over defaults.
    ``http_client`` lets callers bring their own httpx client (proxies, mTLS,
    transports in tests); it is then the caller's to configure.
    """

    def __init__(
        self,
        *,
        http_client: _HttpT | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        initial_retry_delay: float = 0.5,
        max_retry_delay: float = 8.0,
        max_retry_after: float = 60.0,
        poll_interval: float | None = None,
        default_headers: dict[str, str] | None = None,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get("LTXV_API_KEY")
        if not api_key:
            raise ConfigurationError("no API key: pass api_key= or set LTXV_API_KEY")
        self.api_key = api_key
        base = base_url or os.environ.get("LTX_BASE_URL") or DEFAULT_BASE_URL
        if urlsplit(base).scheme not in ("http", "https"):
            raise ConfigurationError(f"base URL must be http(s): {base!r}")
        self.base_url = base.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_retry_after = max_retry_after
        if poll_interval is None:
            poll_interval = float(os.environ.get("LTX_POLL_INTERVAL") or DEFAULT_POLL_INTERVAL)
        self.poll_interval = poll_interval
        self.default_headers = {
            "User-Agent": f"ltxserve-client/{__version__}",
            **(default_headers or {}),
        }
        self._http: _HttpT = http_client if http_client is not None else self._new_http()
        # live events (_events.py): None until the server has answered the events route
        self._events: bool | None = None
        self._init_resources()

    def _new_http(self) -> _HttpT:
        raise NotImplementedError

    def _init_resources(self) -> None:
        """Attach the per-endpoint resources (sync or async flavour)."""

    # -- URLs and headers ---------------------------------------------------------

    def _url(self, path: str) -> str:
        """An API path under the base URL (which may itself carry a path prefix)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def _resolve(self, url: str) -> str:
        """A URL the server handed out (upload or result), made absolute if relative."""
        return urljoin(self.base_url + "/", url)

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _headers(self, url: str, extra: dict[str, str] | None, *, auth: bool) -> dict[str, str]:
        """Request headers. The key is only ever sent to the API's own origin.

        Upload and result URLs may be pre-signed URLs on a storage service. Those
        must not get the key, and some refuse requests that carry a second
        credential.
        """
        headers = dict(self.default_headers)
        if auth and self._same_origin(url):
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(extra or {})
        return headers

    # -- retries ------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with up to 25 % jitter, so clients spread out."""
        delay = min(self.max_retry_delay, self.initial_retry_delay * 2**attempt)
        return float(delay * (1 - 0.25 * random.random()))

    def _retry_delay(
        self, response: httpx.Response, attempt: int, *, resend: bool = True
    ) -> float | None:
        """Seconds to wait before retrying ``response``, or None to raise now.

        ``resend=False`` (v1) keeps 429 and 503, which refuse work before it starts,
        and drops 500, which for a v1 call is a generation that ran and failed.
        """
        status = response.status_code
        if (
            attempt >= self.max_retries
            or status not in RETRY_STATUSES
            or (not resend and status == 500)
        ):
            return None
        hint = parse_retry_after(response.headers.get("retry-after"))
        if hint is None:
            return self._backoff(attempt)
        return hint if hint <= self.max_retry_after else None

    def _connection_retry_delay(
        self, exc: httpx.TransportError, attempt: int, *, resend: bool = True
    ) -> float:
        """Backoff for a network error, or raise it wrapped once retries are spent.

        ``resend=False``: only errors from before the request was sent are retried.
        """
        if attempt >= self.max_retries or not (resend or isinstance(exc, UNSENT_ERRORS)):
            cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
            raise cls(f"{type(exc).__name__}: {exc}") from exc
        return self._backoff(attempt)

    @staticmethod
    def _log_retry(method: str, url: str, why: str, delay: float, attempt: int) -> None:
        log.info("%s %s: %s; retry %d in %.2fs", method, url, why, attempt + 1, delay)

    # -- polling ------------------------------------------------------------------

    @staticmethod
    def _poll_delay(polls: int, ceiling: float, status: JobStatus, *, watching: bool) -> float:
        """Seconds to wait after poll number ``polls`` (1-based) of a job still running.

        Adaptive: 0.5 s, then half as long again each time, up to ``ceiling`` (the
        hosted docs' 5 s by default), so a 1 s job is seen done within about a
        second and a long one is polled no more often than the docs ask. A caller
        that watches progress (``on_status``) of a server that reports it (ltxserve's
        ``progress`` extension; the hosted API has none) is polled every second.
        """
        delay = min(ceiling, FIRST_POLL_DELAY * POLL_GROWTH ** max(0, polls - 1))
        if watching and isinstance(status, ProcessingJob) and status.progress is not None:
            delay = min(delay, PROGRESS_POLL_DELAY)
        return float(delay)

    # -- idempotency and listing --------------------------------------------------

    @staticmethod
    def _submit_headers(idempotency_key: str | None) -> dict[str, str]:
        """The ``Idempotency-Key`` of one submit call: the caller's, else a fresh UUID.

        The same header goes with every retry of the call, so a submit whose answer
        was lost (a dropped connection, a 500 or 503 after the server stored the
        job) is answered with the job it made instead of making a second one (as
        openai-python does). A server without idempotency (the hosted API does not
        document it) ignores the header; the retry policy is the same either way.
        """
        return {IDEMPOTENCY_HEADER: idempotency_key or f"{AUTO_KEY_PREFIX}{uuid.uuid4()}"}

    @staticmethod
    def _list_params(
        endpoint: str | Sequence[str] | None,
        status: str | Sequence[str] | None,
        created_after: datetime | str | None,
        created_before: datetime | str | None,
        limit: int | None,
        cursor: str | None,
    ) -> dict[str, str | int]:
        """Query parameters of GET /v2/jobs; naive datetimes are taken as UTC."""

        def join(value: str | Sequence[str]) -> str:
            return value if isinstance(value, str) else ",".join(value)

        def when(value: datetime | str) -> str:
            if isinstance(value, str):
                return value
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")

        params: dict[str, str | int] = {}
        if endpoint:
            params["endpoint"] = join(endpoint)
        if status:
            params["status"] = join(status)
        if created_after is not None:
            params["created_after"] = when(created_after)
        if created_before is not None:
            params["created_before"] = when(created_before)
        if limit is not None:
            params["limit"] = limit
        if cursor:
            params["cursor"] = cursor
        return params

    # -- bodies -------------------------------------------------------------------

    @staticmethod
    def _check_request(
        request: RequestModel | None, model: type[RequestModel], fields: dict[str, Any]
    ) -> RequestModel:
        """One request object from either a model instance or keyword fields."""
        if request is None:
            return model(**fields)
        if fields:
            raise TypeError("pass a request model or keyword fields, not both")
        if not isinstance(request, model):
            raise TypeError(f"expected {model.__name__}, got {type(request).__name__}")
        return request

    @staticmethod
    def _body(
        request: RequestModel, uploaded: dict[str, str], extra_body: dict[str, Any] | None
    ) -> dict[str, Any]:
        body = request.to_body()
        body.update(uploaded)
        body.update(extra_body or {})
        return body

    @staticmethod
    def _download_target(
        job: CompletedJob | str, dest: str | Path | None, label: str | None
    ) -> tuple[str, Path]:
        """The URL to fetch and the file to write it to."""
        if isinstance(job, str):
            if dest is None:
                raise ValueError("dest is required when downloading a bare URL")
            url, name = job, Path(urlsplit(job).path).name or "download"
        else:
            url = job.output_url(label)
            name = default_filename(job, url)
        path = Path(dest) if dest is not None else Path(name)
        if path.is_dir():
            path = path / name
        return url, path

    @staticmethod
    def _sync_target(request: RequestModel, output: str | Path | None) -> Path:
        """Where a v1 call's MP4 goes (default ``<endpoint>-<UTC time>.mp4``)."""
        if request.endpoint not in SYNC_ENDPOINTS:
            raise ValueError(f"{request.endpoint} has no synchronous /v1 form; use generate()")
        name = f"{request.endpoint}-{datetime.now(UTC):%Y%m%dT%H%M%S}.mp4"
        path = Path(output) if output is not None else Path(name)
        return path / name if path.is_dir() else path

    def _sync_timeout(self, timeout: float | None) -> httpx.Timeout:
        """The client's timeouts, with the read timeout covering a whole generation."""
        base = httpx.Timeout(self.timeout)  # a number or a Timeout
        return httpx.Timeout(connect=base.connect, read=timeout, write=base.write, pool=base.pool)

    @staticmethod
    def _content_length(response: httpx.Response) -> int | None:
        value = response.headers.get("content-length")
        return int(value) if value and value.isdigit() else None
