"""Resolution of ``*_uri`` fields into local files for the engines.

Forms: ``data:<mime>;base64,...`` and ``ltx://uploads/<id>`` (from /v1/upload).
HTTPS fetching with its SSRF guard lives in ltxserve.inputs.fetch.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import InvalidRequestError
from ltxserve.storage.base import BlobNotFound, BlobStore

URI_FIELDS = ("image_uri", "last_frame_uri", "audio_uri", "video_uri")


def _data_uri(field: str, uri: str, dest: Path) -> Path:
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequestError(f"{field}: data URI must look like data:<mime>;base64,<data>")
    try:
        dest.write_bytes(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"{field}: data URI is not valid base64") from exc
    return dest


def resolve_one(field: str, uri: str, dest: Path, *, settings: Settings, blobs: BlobStore,
                api_key_id: str) -> Path:
    if uri.startswith("data:"):
        return _data_uri(field, uri, dest)
    if uri.startswith("ltx://uploads/"):
        upload_id = uri.removeprefix("ltx://uploads/")
        try:
            src = blobs.local_path(f"uploads/{upload_id}")
        except BlobNotFound:
            raise InvalidRequestError(f"{field}: upload {uri} not found or expired") from None
        dest.symlink_to(src)
        return dest
    if uri.startswith(("https://", "http://")):
        raise InvalidRequestError(f"{field}: fetching URLs is not enabled on this server")
    raise InvalidRequestError(f"{field}: unsupported URI form")


def resolve_inputs(request: dict[str, Any], dest_dir: Path, *, settings: Settings,
                   blobs: BlobStore, api_key_id: str) -> dict[str, Path]:
    dest_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for field in URI_FIELDS:
        uri = request.get(field)
        if uri:
            out[field] = resolve_one(field, uri, dest_dir / field, settings=settings,
                                     blobs=blobs, api_key_id=api_key_id)
    return out
