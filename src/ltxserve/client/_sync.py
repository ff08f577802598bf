"""The blocking client: ``Client`` and its per-endpoint resources.

Kept line for line parallel to ``_async.py``. The policy both follow lives in
``_base.py``, so a change in behaviour is made there, and here and in the async
file only the I/O differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import httpx

from ltxserve.client._base import (
    CHUNK_SIZE,
    DEFAULT_WAIT_TIMEOUT,
    IDEMPOTENCY_HEADER,
    BaseClient,
    ProgressCallback,
    StatusCallback,
    local_file,
    parse_retry_after,
)
from ltxserve.client._events import (
    NoEvents,
    SseDecoder,
    not_events,
    stream_headers,
    stream_timeout,
)
from ltxserve.client._exceptions import APIConnectionError, WaitTimeoutError, error_from_response
from ltxserve.client.types import (
    AudioToVideoRequest,
    CompletedJob,
    EndpointName,
    ExtendRequest,
    FailedJob,
    Generation,
    ImageToVideoRequest,
    JobPage,
    JobStatus,
    RequestModel,
    RetakeRequest,
    SubmittedJob,
    TerminalJob,
    TextToVideoRequest,
    UploadTicket,
    VideoToVideoHdrRequest,
    VideoToVideoReframeRequest,
    parse_page,
    parse_status,
    parse_wire,
)

ReqT = TypeVar("ReqT", bound=RequestModel)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


class Client(BaseClient[httpx.Client]):
    """Blocking client for the LTX Video API (hosted, or an ltxserve server).

    ``Client()`` reads ``LTX_BASE_URL`` (default https://api.ltx.video) and
    ``LTXV_API_KEY``. Use it as a context manager, or call ``close()``, to release
    the connection pool.
    """

    def _new_http(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout)

    def _init_resources(self) -> None:
        self.text_to_video = Endpoint(self, TextToVideoRequest)
        self.image_to_video = Endpoint(self, ImageToVideoRequest)
        self.audio_to_video = Endpoint(self, AudioToVideoRequest)
        self.retake = Endpoint(self, RetakeRequest)
        self.extend = Endpoint(self, ExtendRequest)
        self.video_to_video_hdr = Endpoint(self, VideoToVideoHdrRequest)
        self.video_to_video_reframe = Endpoint(self, VideoToVideoReframeRequest)
        self.jobs = Jobs(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: Callable[[], bytes | Iterator[bytes]] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        stream: bool = False,
        follow_redirects: bool = False,
        timeout: httpx.Timeout | None = None,
        resend: bool = True,
    ) -> httpx.Response:
        """One logical request, retried as ``_base`` decides; non-2xx raises."""
        url = self._url(url) if "://" not in url else url
        attempt = 0
        while True:
            request = self._http.build_request(
                method,
                url,
                json=json,
                content=content() if content else None,
                headers=self._headers(url, headers, auth=auth),
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            try:
                response = self._http.send(
                    request, stream=stream, follow_redirects=follow_redirects
                )
            except httpx.TransportError as exc:
                delay = self._connection_retry_delay(exc, attempt, resend=resend)
                self._log_retry(method, url, type(exc).__name__, delay, attempt)
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                retry = self._retry_delay(response, attempt, resend=resend)
                if retry is None:
                    hint = parse_retry_after(response.headers.get("retry-after"))
                    raise error_from_response(response, hint)
                delay = retry
                self._log_retry(method, url, f"HTTP {response.status_code}", delay, attempt)
            time.sleep(delay)
            attempt += 1

    # -- uploads ------------------------------------------------------------------

    def create_upload(self) -> UploadTicket:
        """POST /v1/upload: a pre-signed URL to PUT a file to, and its storage_uri."""
        return parse_wire(UploadTicket, self._send("POST", "/v1/upload").json())

    def upload(self, file: str | Path | bytes) -> UploadTicket:
        """Upload a local file (or bytes); use the ticket's ``storage_uri`` in ``*_uri``."""
        ticket = self.create_upload()
        headers = dict(ticket.required_headers)
        if isinstance(file, bytes):
            data = file
            self._send(
                "PUT",
                self._resolve(ticket.upload_url),
                content=lambda: data,
                headers=headers,
                auth=False,
            )
            return ticket
        path = Path(file)
        # A declared length instead of chunked encoding: pre-signed storage URLs need it.
        headers.setdefault("Content-Length", str(path.stat().st_size))
        self._send(
            "PUT",
            self._resolve(ticket.upload_url),
            content=lambda: _file_chunks(path),
            headers=headers,
            auth=False,
        )
        return ticket

    # -- jobs ---------------------------------------------------------------------

    def submit(
        self,
        request: RequestModel,
        *,
        extra_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> SubmittedJob:
        """POST /v2/{endpoint}; local files in ``*_uri`` fields are uploaded first.

        Sent with an ``Idempotency-Key`` (``idempotency_key``, else a fresh one per
        call), so the call's retries never make a second job."""
        body = self._body(request, self._upload_local(request), extra_body)
        headers = self._submit_headers(idempotency_key)
        response = self._send("POST", f"/v2/{request.endpoint}", json=body, headers=headers)
        return parse_wire(SubmittedJob, response.json())

    def _upload_local(self, request: RequestModel) -> dict[str, str]:
        """Upload every local file named in a ``*_uri`` field: field -> storage_uri."""
        uploaded: dict[str, str] = {}
        for name, value in request.uri_fields().items():
            path = local_file(value)
            if path is not None:
                uploaded[name] = self.upload(path).storage_uri
        return uploaded

    def _get(self, endpoint: EndpointName, job_id: str) -> tuple[JobStatus, float | None]:
        response = self._send("GET", f"/v2/{endpoint}/{quote(job_id, safe='')}")
        return parse_status(response.json()), parse_retry_after(response.headers.get("retry-after"))

    def get(self, endpoint: EndpointName, job_id: str) -> JobStatus:
        """GET /v2/{endpoint}/{id}: the job's current status object."""
        return self._get(endpoint, job_id)[0]

    def cancel(self, endpoint: EndpointName, job_id: str | SubmittedJob) -> JobStatus:
        """DELETE /v2/{endpoint}/{id} (ltxserve's extension; the hosted API has no cancel).

        Returns the ended job: a ``FailedJob`` whose ``cancelled`` is true. Cancelling
        a cancelled job returns it again, so the call is retried like a GET. A job that
        already completed, or failed otherwise, raises ``InvalidRequestError`` (409).
        """
        job_id = job_id.id if isinstance(job_id, SubmittedJob) else job_id
        response = self._send("DELETE", f"/v2/{endpoint}/{quote(job_id, safe='')}")
        return parse_status(response.json())

    def wait(
        self,
        endpoint: EndpointName,
        job_id: str | SubmittedJob,
        *,
        poll_interval: float | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_status: StatusCallback | None = None,
        live: bool = True,
    ) -> TerminalJob:
        """Wait until the job completes or fails; a failed job is returned, not raised.

        Follows the job's live events when the server streams them (ltxserve; see
        ``events``) and polls otherwise (the hosted API), or always with
        ``live=False``. Polls adaptively: after 0.5 s, then half as long again each
        time, up to ``poll_interval`` seconds (default 5, or ``LTX_POLL_INTERVAL``);
        every second while an ``on_status`` caller watches a job that reports
        progress; and as the server's ``Retry-After`` says when it sends one.
        ``on_status`` is called with each status seen. Raises ``WaitTimeoutError``
        after ``timeout`` seconds (``None``: wait forever).
        """
        job_id = job_id.id if isinstance(job_id, SubmittedJob) else job_id
        ceiling = self.poll_interval if poll_interval is None else poll_interval
        watch = self._watch(
            endpoint, job_id, ceiling, timeout, watching=on_status is not None, live=live
        )
        with closing(watch):
            for status in watch:
                if on_status is not None:
                    on_status(status)
                if isinstance(status, CompletedJob | FailedJob):
                    return status
        raise AssertionError("a watch ends with a terminal status")  # pragma: no cover

    def events(
        self,
        endpoint: EndpointName,
        job_id: str | SubmittedJob,
        *,
        poll_interval: float | None = None,
        timeout: float | None = None,
    ) -> Iterator[JobStatus]:
        """Each new status of the job, the terminal one last, then the iterator ends.

        Streamed from ``GET /v2/{endpoint}/{id}/events`` (Server-Sent Events, an
        ltxserve extension) and reopened with ``Last-Event-ID`` if the stream breaks;
        on a server without that route (the hosted API) the job is polled as ``wait``
        polls. Raises ``WaitTimeoutError`` after ``timeout`` seconds (``None``: none).
        """
        job_id = job_id.id if isinstance(job_id, SubmittedJob) else job_id
        ceiling = self.poll_interval if poll_interval is None else poll_interval
        return self._watch(endpoint, job_id, ceiling, timeout, watching=True, live=True)

    def _watch(
        self,
        endpoint: EndpointName,
        job_id: str,
        ceiling: float,
        timeout: float | None,
        *,
        watching: bool,
        live: bool,
    ) -> Generator[JobStatus, None, None]:
        deadline = None if timeout is None else time.monotonic() + timeout
        if live and self._events is not False:
            try:
                yield from self._stream(endpoint, job_id, deadline, timeout)
                return
            except NoEvents:
                if self._events is None:
                    self._events = False
        yield from self._poll(endpoint, job_id, ceiling, deadline, timeout, watching=watching)

    def _poll(
        self,
        endpoint: EndpointName,
        job_id: str,
        ceiling: float,
        deadline: float | None,
        timeout: float | None,
        *,
        watching: bool,
    ) -> Generator[JobStatus, None, None]:
        polls = 0
        while True:
            polls += 1
            status, hint = self._get(endpoint, job_id)
            yield status
            if isinstance(status, CompletedJob | FailedJob):
                return
            delay = (
                hint
                if hint is not None
                else self._poll_delay(polls, ceiling, status, watching=watching)
            )
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        f"job {job_id} still {status.status} after {timeout}s", job=status
                    )
                delay = min(delay, remaining)
            time.sleep(delay)

    def _stream(
        self,
        endpoint: EndpointName,
        job_id: str,
        deadline: float | None,
        timeout: float | None,
    ) -> Generator[JobStatus, None, None]:
        """The job's events, reopened after a break; NoEvents when the server has none."""
        url = self._url(f"/v2/{endpoint}/{quote(job_id, safe='')}/events")
        decoder = SseDecoder()
        last: JobStatus | None = None
        failures = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._timed_out(endpoint, job_id, last, timeout)
            request = self._http.build_request(
                "GET",
                url,
                headers=self._headers(url, stream_headers(decoder.last_id), auth=True),
                timeout=stream_timeout(self.timeout, remaining),
            )
            try:
                response = self._http.send(request, stream=True)
                try:
                    if self._events is None and not_events(response):
                        response.read()
                        self._get(endpoint, job_id)  # NotFoundError: no job, not no route
                        raise NoEvents
                    if not response.is_success:
                        response.read()
                        retry = self._retry_delay(response, failures)
                        if retry is None:
                            hint = parse_retry_after(response.headers.get("retry-after"))
                            raise error_from_response(response, hint)
                        delay = retry
                    else:
                        self._events = True
                        for line in response.iter_lines():
                            event = decoder.feed(line)
                            if event is None or event.event != "status":
                                continue
                            failures = 0
                            last = parse_status(event.json())
                            yield last
                            if isinstance(last, CompletedJob | FailedJob):
                                return
                            # a job whose progress keeps the stream busy never lets the
                            # read timeout fire: the deadline is checked per event too
                            if deadline is not None and time.monotonic() >= deadline:
                                raise self._timed_out(endpoint, job_id, last, timeout)
                        # ended before the job (the API process shut down): reopen
                        if failures >= self.max_retries:
                            raise NoEvents
                        delay = self._backoff(failures) if failures else 0.0
                finally:
                    response.close()
            except httpx.TransportError as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._timed_out(endpoint, job_id, last, timeout) from None
                delay = self._connection_retry_delay(exc, failures)
                self._log_retry("GET", url, type(exc).__name__, delay, failures)
            failures += 1
            time.sleep(delay)

    def _timed_out(
        self, endpoint: EndpointName, job_id: str, last: JobStatus | None, timeout: float | None
    ) -> WaitTimeoutError:
        job = last if last is not None else self.get(endpoint, job_id)
        return WaitTimeoutError(f"job {job_id} still {job.status} after {timeout}s", job=job)

    def download(
        self,
        job: CompletedJob | str,
        dest: str | Path | None = None,
        *,
        label: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Path:
        """Stream a result to ``dest`` (file or directory; default ``<id>.mp4``).

        Bytes go to ``<dest>.part``, renamed into place when complete, so an
        interrupted download never leaves a truncated file under the real name.
        """
        url, path = self._download_target(job, dest, label)
        response = self._send("GET", self._resolve(url), stream=True, follow_redirects=True)
        return self._save(response, path, on_progress)

    def _save(
        self, response: httpx.Response, path: Path, on_progress: ProgressCallback | None
    ) -> Path:
        """Stream a response body to ``path`` by way of ``<path>.part``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        try:
            total, done = self._content_length(response), 0
            if on_progress is not None:
                on_progress(0, total)
            with part.open("wb") as f:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    f.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise APIConnectionError(f"download interrupted: {exc}") from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        part.replace(path)
        return path

    def generate(
        self,
        request: RequestModel,
        *,
        output: str | Path | None = None,
        poll_interval: float | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_status: StatusCallback | None = None,
        on_progress: ProgressCallback | None = None,
        extra_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Generation:
        """Submit, wait, raise if the job failed, download. One call, one file."""
        job = self.submit(request, extra_body=extra_body, idempotency_key=idempotency_key)
        done = self.wait(
            request.endpoint,
            job.id,
            poll_interval=poll_interval,
            timeout=timeout,
            on_status=on_status,
        ).raise_for_status()
        path = self.download(done, output, on_progress=on_progress)
        return Generation(job=done, path=path)

    def generate_sync(
        self,
        request: RequestModel,
        *,
        output: str | Path | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
        extra_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Path:
        """POST /v1/{endpoint}: one request whose answer is the MP4 itself.

        No job id and no polling: the connection stays open for the whole
        generation, ``timeout`` seconds at most (``None``: no limit). The server
        answers 504 when its own limit comes first. Local files in ``*_uri`` fields
        are uploaded first. Network errors are retried only when the request was
        never sent: a resent request would generate the video again. With
        ``idempotency_key`` (an ltxserve server), calling again with the same key
        after a dropped connection waits for that same generation.
        """
        path = self._sync_target(request, output)
        body = self._body(request, self._upload_local(request), extra_body)
        response = self._send(
            "POST",
            f"/v1/{request.endpoint}",
            json=body,
            headers={IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None,
            stream=True,
            timeout=self._sync_timeout(timeout),
            resend=False,
        )
        return self._save(response, path, on_progress)


class Endpoint(Generic[ReqT]):
    """One endpoint's operations, e.g. ``client.text_to_video.generate(...)``.

    Each method takes a request model (the typed form) or its fields as keywords.
    """

    def __init__(self, client: Client, model: type[ReqT]) -> None:
        self._client = client
        self.model = model
        self.name: EndpointName = model.endpoint

    def submit(
        self,
        request: ReqT | None = None,
        /,
        *,
        extra_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> SubmittedJob:
        req = self._client._check_request(request, self.model, fields)
        return self._client.submit(req, extra_body=extra_body, idempotency_key=idempotency_key)

    def get(self, job_id: str | SubmittedJob) -> JobStatus:
        return self._client.get(self.name, job_id if isinstance(job_id, str) else job_id.id)

    def cancel(self, job_id: str | SubmittedJob) -> JobStatus:
        return self._client.cancel(self.name, job_id)

    def wait(
        self,
        job_id: str | SubmittedJob,
        *,
        poll_interval: float | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_status: StatusCallback | None = None,
        live: bool = True,
    ) -> TerminalJob:
        return self._client.wait(
            self.name,
            job_id,
            poll_interval=poll_interval,
            timeout=timeout,
            on_status=on_status,
            live=live,
        )

    def events(
        self, job_id: str | SubmittedJob, *, timeout: float | None = None
    ) -> Iterator[JobStatus]:
        return self._client.events(self.name, job_id, timeout=timeout)

    def download(
        self,
        job: CompletedJob | str,
        dest: str | Path | None = None,
        *,
        label: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Path:
        return self._client.download(job, dest, label=label, on_progress=on_progress)

    def generate(
        self,
        request: ReqT | None = None,
        /,
        *,
        output: str | Path | None = None,
        poll_interval: float | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_status: StatusCallback | None = None,
        on_progress: ProgressCallback | None = None,
        extra_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Generation:
        req = self._client._check_request(request, self.model, fields)
        return self._client.generate(
            req,
            output=output,
            poll_interval=poll_interval,
            timeout=timeout,
            on_status=on_status,
            on_progress=on_progress,
            extra_body=extra_body,
            idempotency_key=idempotency_key,
        )

    def generate_sync(
        self,
        request: ReqT | None = None,
        /,
        *,
        output: str | Path | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
        extra_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Path:
        req = self._client._check_request(request, self.model, fields)
        return self._client.generate_sync(
            req,
            output=output,
            timeout=timeout,
            on_progress=on_progress,
            extra_body=extra_body,
            idempotency_key=idempotency_key,
        )


class Jobs:
    """``client.jobs``: the key's jobs (``GET /v2/jobs``, ltxserve's extension).

    Filters: ``endpoint`` and ``status`` (one or several), ``created_after`` and
    ``created_before`` (datetimes, naive ones as UTC, or ISO 8601 strings).
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self,
        *,
        endpoint: EndpointName | Sequence[EndpointName] | None = None,
        status: str | Sequence[str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page, newest first (``limit`` per page, server default 20, at most 100);
        pass the page's ``next_cursor`` as ``cursor`` for the next one."""
        params = self._client._list_params(
            endpoint, status, created_after, created_before, limit, cursor
        )
        query = f"?{urlencode(params)}" if params else ""
        return parse_page(self._client._send("GET", f"/v2/jobs{query}").json())

    def pages(
        self,
        *,
        endpoint: EndpointName | Sequence[EndpointName] | None = None,
        status: str | Sequence[str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        limit: int | None = None,
    ) -> Iterator[JobPage]:
        """Every page in turn, following ``next_cursor``; stable while jobs are added
        (a job submitted meanwhile is newer than the pages still to come)."""
        cursor: str | None = None
        while True:
            page = self.list(
                endpoint=endpoint,
                status=status,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            )
            yield page
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    def iter(
        self,
        *,
        endpoint: EndpointName | Sequence[EndpointName] | None = None,
        status: str | Sequence[str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        limit: int | None = None,
    ) -> Iterator[JobStatus]:
        """Every matching job, newest first, a page at a time."""
        for page in self.pages(
            endpoint=endpoint,
            status=status,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
        ):
            yield from page.data
