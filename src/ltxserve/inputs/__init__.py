"""Resolution of ``*_uri`` fields into checked local files for the engines.

Three forms (docs/inputs.md):

- ``https://...`` fetched by the worker behind the SSRF guard (ltxserve.inputs.fetch):
  images <= 15 MB within 10 s, audio and video <= 32 MB within 30 s;
- ``data:<mime>;base64,...``: images <= 7 MB, audio and video <= 15 MB encoded;
- ``ltx://uploads/<id>`` from ``POST /v1/upload``: the same API key, within 24 h.

Every file is then identified from its bytes and checked (ltxserve.inputs.media)
and held to the endpoint's limits (ltxserve.inputs.rules).

Two entry points: ``check_submit_inputs`` runs in the API at submit time on the
inputs that are already here (data and storage URIs, plus the static part of the
URL guard), so most bad media gets a 400 at once; ``resolve_inputs`` runs in the
worker when the job is processed, fetches URLs and checks everything again, and a
violation there fails the job with invalid_request_error.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import ApiError, InvalidRequestError
from ltxserve.inputs.fetch import (
    IMAGE_FETCH,
    MEDIA_FETCH,
    FetchPolicy,
    FetchRefused,
    MiB,
    check_url,
    fetch_to_file,
)
from ltxserve.inputs.media import FIELD_KIND, InputInfo, inspect
from ltxserve.inputs.rules import check_input
from ltxserve.jobs.contract.requests import URI_FIELDS
from ltxserve.jobs.store.base import STORAGE_PREFIX, Upload, upload_blob_key
from ltxserve.storage.base import BlobNotFound, BlobStore

DATA_URI_LIMITS = {"image": 7 * MiB, "audio": 15 * MiB, "video": 15 * MiB}  # encoded length

UploadLookup = Callable[[str, str], Upload | None]
"""(api_key_id, upload_id) -> the upload if that key may use it now, else None:
``JobManager.uploads.usable``. Inputs never query the store themselves."""


class Keepalive:
    """Calls ``beat`` at most every ``every`` seconds; a False answer means the job is lost."""

    def __init__(self, beat: Callable[[], bool] | None, every: float) -> None:
        self.beat = beat
        self.every = every
        self.next = time.monotonic() + every

    def __call__(self) -> None:
        if self.beat is None or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.every
        if not self.beat():
            raise ApiError("the job was cancelled or reassigned while its inputs were fetched")


def _data_uri(field: str, uri: str, dest: Path) -> Path:
    header, sep, payload = uri.partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise InvalidRequestError(f"{field}: data URI must look like data:<mime>;base64,<data>")
    limit = DATA_URI_LIMITS[FIELD_KIND[field]]
    if len(payload) > limit:
        raise InvalidRequestError(
            f"{field}: data URI is larger than the {limit // MiB} MB limit for this input; "
            "use /v1/upload or an https:// URL"
        )
    try:
        dest.write_bytes(base64.b64decode("".join(payload.split()), validate=True))
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{field}: data URI is not valid base64") from None
    return dest


def _upload_copy(
    field: str,
    uri: str,
    dest: Path,
    *,
    blobs: BlobStore,
    uploads: UploadLookup | None,
    api_key_id: str,
    max_bytes: int,
) -> Path:
    """A private copy of an upload's bytes at ``dest`` (``download_to``: the blob may be in
    a bucket, or on a machine this process cannot see).

    Its size is learnt from the store first (a HEAD for S3, where the client PUT to the
    bucket and no request told this server) and held to ``upload_max_bytes``, which a
    presigned PUT cannot enforce.
    """
    if not uri.startswith(STORAGE_PREFIX):
        raise InvalidRequestError(f"{field}: {uri} is not a storage URI from /v1/upload")
    upload_id = uri.removeprefix(STORAGE_PREFIX)
    gone = InvalidRequestError(f"{field}: upload {uri} not found or expired")
    key = upload_blob_key(upload_id)
    up = None
    if uploads is not None:
        up = uploads(api_key_id, upload_id)
        if up is None:
            raise gone
    try:
        size = blobs.size(key)
        if size > max_bytes:
            raise InvalidRequestError(
                f"{field}: the upload {uri} is larger than the {max_bytes} byte upload limit"
            )
        blobs.download_to(key, dest)
    except BlobNotFound:
        if up is not None and up.completed_at is None:
            raise InvalidRequestError(
                f"{field}: nothing has been uploaded to {uri} yet; PUT the file to its "
                "upload_url first"
            ) from None
        raise gone from None
    return dest


def check_static(field: str, uri: str, settings: Settings) -> None:
    """What can be said of a URL without touching the network (scheme, host form, port)."""
    if uri.startswith(("https://", "http://")):
        try:
            check_url(uri, FetchPolicy.from_settings(settings))
        except FetchRefused as exc:
            raise InvalidRequestError(f"{field}: {exc}") from None


def resolve_one(
    field: str,
    uri: str,
    dest: Path,
    *,
    settings: Settings,
    blobs: BlobStore,
    api_key_id: str,
    uploads: UploadLookup | None = None,
    keepalive: Keepalive | None = None,
) -> Path:
    """Make one input the local file ``dest`` (the worker's copy); not yet checked."""
    if uri.startswith("data:"):
        return _data_uri(field, uri, dest)
    if uri.startswith("ltx://"):
        return _upload_copy(
            field,
            uri,
            dest,
            blobs=blobs,
            uploads=uploads,
            api_key_id=api_key_id,
            max_bytes=settings.upload_max_bytes,
        )
    if uri.startswith(("https://", "http://")):
        limit = IMAGE_FETCH if FIELD_KIND[field] == "image" else MEDIA_FETCH
        try:
            fetch_to_file(
                uri,
                dest,
                policy=FetchPolicy.from_settings(settings),
                limit=limit,
                on_chunk=keepalive,
            )
        except FetchRefused as exc:
            raise InvalidRequestError(f"{field}: {exc}") from None
        return dest
    raise InvalidRequestError(
        f"{field} must be an https:// URL, a data: URI or an ltx:// storage URI"
    )


def resolve_inputs(
    request: dict[str, Any],
    dest_dir: Path,
    *,
    settings: Settings,
    blobs: BlobStore,
    api_key_id: str,
    endpoint: str | None = None,
    uploads: UploadLookup | None = None,
    keepalive: Callable[[], bool] | None = None,
) -> dict[str, Path]:
    """Worker side: fetch or decode every input, identify it, and hold it to the endpoint's rules.

    ``keepalive`` (e.g. a lease heartbeat) is called now and then during long
    fetches; when it answers False the job is no longer this worker's and
    resolution stops with ApiError.
    """
    beat = Keepalive(keepalive, settings.heartbeat_seconds)
    out: dict[str, Path] = {}
    for field in URI_FIELDS:
        uri = request.get(field)
        if not uri:
            continue
        dest_dir.mkdir(parents=True, exist_ok=True)  # only for a job that has inputs
        path = resolve_one(
            field,
            uri,
            dest_dir / field,
            settings=settings,
            blobs=blobs,
            api_key_id=api_key_id,
            uploads=uploads,
            keepalive=beat,
        )
        info = inspect(field, path)
        if endpoint is not None:
            check_input(endpoint, request, info)
        out[field] = path
        beat()
    return out


def check_submit_inputs(
    endpoint: str,
    request: dict[str, Any],
    *,
    settings: Settings,
    blobs: BlobStore,
    uploads: UploadLookup | None,
    api_key_id: str,
) -> dict[str, InputInfo]:
    """API side (blocking; run it in a thread): check the inputs that need no fetch.

    Data URIs are decoded and storage URIs copied to a temporary file (the API process
    may not share a filesystem with the blob store); both are identified and held to
    the endpoint's rules. URLs get the static checks only; they are fetched and
    checked by the worker.
    """
    infos: dict[str, InputInfo] = {}
    fields = [f for f in URI_FIELDS if request.get(f)]
    for field in fields:
        check_static(field, request[field], settings)
    local = [f for f in fields if request[f].startswith(("data:", "ltx://"))]
    if not local:
        return infos
    with tempfile.TemporaryDirectory(prefix="ltxserve-submit-") as tmp:
        for field in local:
            uri = request[field]
            if uri.startswith("data:"):
                path = _data_uri(field, uri, Path(tmp) / field)
            else:
                path = _upload_copy(
                    field,
                    uri,
                    Path(tmp) / field,
                    blobs=blobs,
                    uploads=uploads,
                    api_key_id=api_key_id,
                    max_bytes=settings.upload_max_bytes,
                )
            info = inspect(field, path)
            check_input(endpoint, request, info)
            infos[field] = info
    return infos
