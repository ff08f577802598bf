"""Signed result downloads: ``/files/<blob key>?expires=..&signature=..``.

No API key needed (the documented client loop fetches ``video_url`` bare); the
HMAC signature over path and expiry is the authority, as with a pre-signed S3
URL. Range requests are served by Starlette's FileResponse.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from ltxserve.api.deps import Blobs, SigningKey
from ltxserve.errors import NotFoundError, SignatureError
from ltxserve.storage.base import BlobNotFound
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
    try:
        local = blobs.local_path(blob_key)
    except BlobNotFound as exc:
        raise NotFoundError("File not found") from exc
    media_type = CONTENT_TYPES.get(local.suffix, "application/octet-stream")
    return FileResponse(
        local, media_type=media_type, filename=local.name, content_disposition_type="inline"
    )
