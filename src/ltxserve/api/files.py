"""Signed result downloads: ``/files/<blob key>?expires=..&signature=..``.

The local store's result URLs (its ``url()``); an S3 store hands out
presigned URLs of the bucket instead, and nothing links here. No API key needed
(the documented client loop fetches ``video_url`` bare); the HMAC signature over
path and expiry is the authority, as with a pre-signed S3 URL. Range requests are
served by Starlette's FileResponse (``storage.http``).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from starlette.responses import Response

from ltxserve.api.deps import Blobs, SigningKey
from ltxserve.errors import NotFoundError, SignatureError
from ltxserve.storage.base import BlobNotFound
from ltxserve.storage.http import blob_response
from ltxserve.storage.signing import verify

router = APIRouter()

CONTENT_TYPES = {".mp4": "video/mp4", ".zip": "application/zip", ".mov": "video/quicktime"}


@router.api_route("/files/{blob_key:path}", methods=["GET", "HEAD"])
async def download(
    request: Request, blob_key: str, blobs: Blobs, signing_key: SigningKey
) -> Response:
    path = f"/files/{blob_key}"
    q = request.query_params
    if not verify(signing_key, path, q.get("expires"), q.get("signature")):
        raise SignatureError("Invalid or expired signature for this URL")
    media_type = CONTENT_TYPES.get(PurePosixPath(blob_key).suffix, "application/octet-stream")
    try:
        return await blob_response(blobs, blob_key, media_type)
    except BlobNotFound as exc:
        raise NotFoundError("File not found") from exc
