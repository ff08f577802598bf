"""The synchronous v1 operations: the same job path as v2, answered with the MP4 itself.

``POST /v1/{text-to-video,image-to-video,audio-to-video,retake,extend}`` takes the
v2 body, creates an ordinary job (same validation, input checks and admission),
waits for a worker to finish it by polling the store, and answers 200 with the
video (``Content-Type: video/mp4``, ``Content-Length``, ``x-request-id``).

- A failed job answers its recorded error with the usual status (400 for
  invalid_request_error, ...).
- ``sync_timeout_seconds`` bounds the wait (queueing included): past it the job is
  failed and the answer is 504 with the envelope, type ``api_error`` (the contract
  lists 504 for these operations but no error type for it): ``SyncTimeoutError``.
- A client that disconnects while waiting gets its job failed at once (the answer,
  ``ClientClosedError``, is a 499 for the access log only); the worker
  holding it notices at its next heartbeat (``heartbeat_seconds``) and abandons it,
  so nobody generates for a client that has gone. Unless the request carried an
  ``Idempotency-Key``: its job goes on, and a retry with the key waits for that
  same job (and gets its video, or its error) instead of starting another.

The job stays visible for retention like any other (no one knows its id), and its
output is deleted with it.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response

from ltxserve.api.deps import Blobs, Config, KeyResolver, Keys, Manager, run_store
from ltxserve.api.routes import create_job
from ltxserve.config import Settings
from ltxserve.errors import ApiError, ClientClosedError, SyncTimeoutError, error_from_type
from ltxserve.jobs.lifecycle import idempotency
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.jobs.store.base import Job
from ltxserve.storage.base import BlobNotFound, BlobStore
from ltxserve.storage.http import blob_response

router = APIRouter()

SYNC_ENDPOINTS = ("text-to-video", "image-to-video", "audio-to-video", "retake", "extend")
POLL_MIN, POLL_MAX = 0.05, 0.5


async def run_sync(
    request: Request,
    endpoint: str,
    *,
    settings: Settings,
    manager: JobManager,
    keys: KeyResolver,
    blobs: BlobStore,
) -> Response:
    job = (await create_job(request, endpoint, manager, keys)).job
    # With an Idempotency-Key the client means to come back: a retry with the key
    # waits for this same job, so a dropped connection does not fail it.
    keyed = idempotency.HEADER.lower() in request.headers
    timeout = float(settings.sync_timeout_seconds)
    deadline = time.monotonic() + timeout
    delay = POLL_MIN
    current: Job | None = job
    while True:
        current = await run_store(manager, manager.job, job.id)
        if current is None or current.terminal:
            break
        if await request.is_disconnected():
            if not keyed:
                await anyio.to_thread.run_sync(
                    manager.abandon, job.id, "the client disconnected before the video was ready"
                )
            raise ClientClosedError("The client disconnected before the video was ready")
        if time.monotonic() >= deadline:
            await anyio.to_thread.run_sync(
                manager.abandon, job.id, f"generation did not finish within {timeout:g} s"
            )
            # the worker may have finished in the meantime: use the result if so
            current = await run_store(manager, manager.job, job.id)
            if current is None or current.status != JobStatus.COMPLETED:
                raise SyncTimeoutError(
                    f"Generation did not finish within {timeout:g} s; use the v2 endpoint "
                    f"(POST /v2/{endpoint}) for long generations"
                )
            break
        await anyio.sleep(delay)
        delay = min(POLL_MAX, delay * 1.5)
    if current is None:
        raise ApiError("The job disappeared before it finished")
    if current.status == JobStatus.FAILED:
        raise error_from_type(
            current.error_type or "api_error", current.error_message or "generation failed"
        )
    output = (current.result or {}).get("video_url")
    if not output:
        raise ApiError("The job finished without a video")
    try:
        return await blob_response(blobs, output["key"], "video/mp4")
    except BlobNotFound as exc:
        raise ApiError("The generated video is no longer available") from exc


def _make(endpoint: str) -> Any:
    async def handler(
        request: Request, settings: Config, manager: Manager, keys: Keys, blobs: Blobs
    ) -> Response:
        return await run_sync(
            request, endpoint, settings=settings, manager=manager, keys=keys, blobs=blobs
        )

    handler.__name__ = f"sync_{endpoint.replace('-', '_')}"
    return handler


for _endpoint in SYNC_ENDPOINTS:
    router.add_api_route(f"/v1/{_endpoint}", _make(_endpoint), methods=["POST"])
