"""The upload flow: ``POST /v1/upload`` and the signed ``PUT /uploads/<id>`` it hands out.

``POST /v1/upload`` (API key, no body) answers::

    {"upload_url": "<base>/uploads/<id>?expires=..&signature=..",   # PUT, 1 h
     "storage_uri": "ltx://uploads/<id>",                            # 24 h, same key
     "expires_at": "<when upload_url stops working>",
     "required_headers": {"x-ltxserve-content-length-range": "1,104857600"}}

The PUT needs no API key: the HMAC signature over path and expiry is the
authority, as with a pre-signed cloud storage URL. It must carry the required
headers verbatim, streams to a temporary file (never whole in memory) under
``upload_max_bytes`` (checked from Content-Length and while streaming: 413
request_too_large), then lands in the blob store under ``uploads/<id>``. One
PUT per upload URL: a second one answers 409. The content is not judged here;
it is identified and checked when a request uses the storage URI.

The blob store makes ``upload_url`` (``BlobStore.upload_url``). The above is the local
store's. With S3 it is a presigned PUT straight to the bucket object ``uploads/<id>``:
no request reaches this server, so nothing is recorded at PUT time; the size is
learnt (HEAD) and held to ``upload_max_bytes`` when a request uses the storage URI
(``ltxserve.inputs``), and a second PUT before the URL expires replaces the object
(S3 cannot refuse it). ``required_headers`` are the same for both, so one client
works with either (S3 ignores the header).
"""

from __future__ import annotations

import os
import secrets

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ltxserve.api.deps import Blobs, Config, Keys, Manager, SigningKey, base_url, run_store
from ltxserve.api.errors import JSONBytes
from ltxserve.api.status import iso_ms
from ltxserve.errors import (
    ClientClosedError,
    InvalidRequestError,
    NotFoundError,
    RequestTooLargeError,
    SignatureError,
    UploadUsedError,
)
from ltxserve.jobs.store.base import now_ms, valid_upload_id
from ltxserve.storage.signing import verify
from ltxserve.wire_numbers import parse_uint

router = APIRouter()

RANGE_HEADER = "x-ltxserve-content-length-range"
WRITE_BATCH = 1024 * 1024  # bytes gathered before one write to disk (in a thread)


def required_headers(max_bytes: int) -> dict[str, str]:
    return {RANGE_HEADER: f"1,{max_bytes}"}


@router.post("/v1/upload")
async def create(
    request: Request, settings: Config, manager: Manager, keys: Keys, blobs: Blobs
) -> Response:
    key_id = await keys.key_id(request.headers.get("authorization"))
    s = settings
    up = await run_store(manager, manager.uploads.create, key_id)
    expires = (up.url_expires_at + 999) // 1000
    url = blobs.upload_url(up.blob_key, expires, base_url(request, s))
    return JSONBytes(
        {
            "upload_url": url,
            "storage_uri": up.storage_uri,
            "expires_at": iso_ms(up.url_expires_at),
            "required_headers": required_headers(s.upload_max_bytes),
        }
    )


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"The upload exceeds the {limit} byte limit")


@router.put("/uploads/{upload_id}")
async def put(
    request: Request, upload_id: str, settings: Config, manager: Manager, signing_key: SigningKey
) -> Response:
    s = settings
    path = f"/uploads/{upload_id}"
    q = request.query_params
    if not valid_upload_id(upload_id) or not verify(
        signing_key, path, q.get("expires"), q.get("signature")
    ):
        raise SignatureError("Invalid or expired signature for this upload URL")
    wanted = required_headers(s.upload_max_bytes)
    for name, value in wanted.items():
        if request.headers.get(name, "").strip() != value:
            raise InvalidRequestError(f"The upload must send the required header {name}: {value}")
    up = await run_store(manager, manager.uploads.get, upload_id)
    if up is None:
        raise NotFoundError("Upload not found or expired")
    if up.url_expires_at <= now_ms():
        raise SignatureError("This upload URL has expired")
    if up.completed_at is not None:
        raise UploadUsedError("A file was already uploaded to this URL; ask for a new one")
    header = request.headers.get("content-length")
    if header is not None:
        declared = parse_uint(header.strip())
        if declared is None:
            raise InvalidRequestError("Content-Length is not a number")
        if declared > s.upload_max_bytes:
            raise _too_large(s.upload_max_bytes)
        if declared == 0:
            raise InvalidRequestError("The upload is empty")

    tmp_dir = manager.uploads.tmp_dir
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{upload_id}-{secrets.token_hex(4)}.part"
    try:
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        with tmp.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > s.upload_max_bytes:
                    raise _too_large(s.upload_max_bytes)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BATCH:
                    await run_in_threadpool(out.write, b"".join(pending))
                    pending, pending_size = [], 0
            if pending:
                await run_in_threadpool(out.write, b"".join(pending))
        if size == 0:
            raise InvalidRequestError("The upload is empty")
        content_type = (request.headers.get("content-type") or "")[:200]
        if not await run_in_threadpool(manager.uploads.complete, up, size, content_type, tmp):
            raise UploadUsedError("A file was already uploaded to this URL, or the URL expired")
        return JSONBytes({"storage_uri": up.storage_uri, "size": size})
    except ClientDisconnect as exc:
        raise ClientClosedError("The client disconnected during the upload") from exc
    finally:
        if tmp.exists():
            os.unlink(tmp)
