"""Blobs as objects in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2 ...).

Chosen with ``LTXSERVE_STORAGE_URL=s3://bucket/prefix`` (``storage.open_blobs``). The
endpoint comes from ``LTXSERVE_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL(_S3)`` (unset:
AWS itself), the region from ``LTXSERVE_S3_REGION`` or boto3's chain, and the
credentials from boto3's usual chain (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, instance
roles ...), so an operator configures it the way they configure every other S3 client.

Results are handed out as presigned GET URLs and uploads as presigned PUT URLs: the
bytes go between the client and the bucket, never through an API process. Writes
go through boto3's transfer manager, which switches to a multipart upload above
``MULTIPART_THRESHOLD`` and retries each part; botocore's "standard" retry mode
retries throttling and 5xx answers with backoff before a ``StorageError`` is raised.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ltxserve.storage.base import BlobNotFound, StorageError, check_key

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 refuses longer-lived signatures
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
STREAM_CHUNK = 1024 * 1024


def parse_storage_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"storage URL must look like s3://bucket/prefix, not {url!r}")
    return parts.netloc, parts.path.strip("/")


def make_client(
    endpoint_url: str | None,
    region: str | None = None,
    retries: int = 5,
    timeout: float = 30.0,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A boto3 S3 client with bounded timeouts and standard retries. Credentials come
    from boto3's chain unless given (access key, secret key)."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": retries},
        connect_timeout=timeout,
        read_timeout=timeout,
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    keys: dict[str, str] = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, **keys)


class S3BlobStore:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(
        cls, url: str, endpoint_url: str | None = None, region: str | None = None
    ) -> S3BlobStore:
        bucket, prefix = parse_storage_url(url)
        return cls(make_client(endpoint_url, region), bucket, prefix)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, what: str, key: str) -> Iterator[None]:
        """botocore's errors as the storage tree's: a missing object is BlobNotFound."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in NOT_FOUND_CODES:
                raise BlobNotFound(key) from exc
            raise StorageError(f"{what} {key}: {code or exc}") from exc
        except (BotoCoreError, Boto3Error) as exc:  # refused, timed out after the retries,
            raise StorageError(f"{what} {key}: {exc}") from exc  # a multipart upload failed

    def put_file(self, key: str, src: Path) -> int:
        from boto3.s3.transfer import TransferConfig

        size = src.stat().st_size
        cfg = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=PART_SIZE,
            use_threads=False,
        )
        with self._errors("upload", key):
            self.client.upload_file(
                Filename=str(src), Bucket=self.bucket, Key=self._key(key), Config=cfg
            )
        src.unlink(missing_ok=True)  # same contract as the local store: the file moves
        return size

    def download_to(self, key: str, dest: Path) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self._errors("download", key):
                self.client.download_file(Bucket=self.bucket, Key=self._key(key), Filename=str(tmp))
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest.stat().st_size

    def stream(self, key: str) -> tuple[int, Iterator[bytes], Any]:
        """The blob's size, its bytes in chunks, and the body to close: for an API process
        that must answer with the bytes themselves (the v1 operations)."""
        with self._errors("download", key):
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        body = obj["Body"]
        return int(obj["ContentLength"]), body.iter_chunks(STREAM_CHUNK), body

    def size(self, key: str) -> int:
        with self._errors("head", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return int(head["ContentLength"])

    def url(self, key: str, expires: int, base_url: str = "") -> str:
        """A presigned GET valid until ``expires`` (unix seconds; capped at 7 days)."""
        return self._presign("get_object", key, expires)

    def upload_url(self, key: str, expires: int, base_url: str = "") -> str:
        """A presigned PUT for one object, valid until ``expires`` (unix seconds)."""
        return self._presign("put_object", key, expires)

    def _presign(self, operation: str, key: str, expires: int) -> str:
        seconds = max(1, min(MAX_PRESIGN_SECONDS, int(expires - time.time())))
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        return str(self.client.generate_presigned_url(operation, Params=params, ExpiresIn=seconds))

    def delete_prefix(self, prefix: str) -> int:
        """Delete ``prefix`` itself and every object under ``prefix/``, in batches."""
        full = self._key(prefix)
        count = 0
        batch: list[dict[str, str]] = []
        with self._errors("delete", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:  # one page (1000 keys) in memory at a time
                for obj in page.get("Contents", []):
                    name = obj["Key"]
                    if name == full or name.startswith(full + "/"):  # "jobs/a" spares "jobs/ab"
                        batch.append({"Key": name})
                if batch:
                    self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    count += len(batch)
                    batch = []
        return count

    def ping(self) -> None:
        with self._errors("head bucket", self.bucket):
            self.client.head_bucket(Bucket=self.bucket)
