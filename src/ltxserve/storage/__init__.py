"""Blob storage behind one interface: a local directory (the embedded default) or an
S3-compatible bucket (``LTXSERVE_STORAGE_URL=s3://bucket/prefix``). ``open_blobs`` is
the one place that chooses; nothing else names an implementation.

    StorageError          any store failure (translated from OSError / botocore)
    +-- BlobNotFound      no such key, or a key that could escape the store
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ltxserve.config import Settings
    from ltxserve.storage.base import BlobStore


def s3_endpoint(settings: Settings) -> str | None:
    """``LTXSERVE_S3_ENDPOINT_URL``, else the AWS SDKs' own variables (read here, not by
    boto3, so that a custom endpoint also gets path-style addressing), else AWS."""
    return (
        settings.s3_endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def open_blobs(settings: Settings) -> BlobStore:
    """The deployment's blob store: S3 when ``storage_url`` is set, else the data dir's
    ``blobs/`` directory, whose URLs are signed with the deployment's secret."""
    if settings.storage_url:
        from ltxserve.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(settings.storage_url, s3_endpoint(settings), settings.s3_region)
    from ltxserve.storage.local import LocalBlobStore

    return LocalBlobStore(settings.blob_dir, signing_key=settings.signing_key())
