"""The S3 server of the tests: SeaweedFS on loopback (scripts/s3-start.sh, started by
scripts/test.sh) with one configured identity, so signatures are really checked.
Each test module gets a bucket of its own; buckets are left to the throwaway server."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest

from ltxserve.storage.s3 import make_client

S3_URL = os.environ.get("LTXSERVE_TEST_S3_ENDPOINT")
ACCESS = os.environ.get("LTXSERVE_TEST_S3_ACCESS_KEY", "ltxserve-test")
SECRET = os.environ.get("LTXSERVE_TEST_S3_SECRET_KEY", "ltxserve-test-secret")


def s3_client(secret: str = SECRET, endpoint: str | None = None, retries: int = 3) -> Any:
    return make_client(
        endpoint or S3_URL, "us-east-1", retries=retries, timeout=5, credentials=(ACCESS, secret)
    )


def s3_env(bucket: str, prefix: str, endpoint: str | None = None) -> dict[str, str]:
    """What an operator sets to put a deployment's blobs in ``s3://bucket/prefix``:
    the endpoint, and the credentials and region the way every AWS client reads them."""
    return {
        "LTXSERVE_STORAGE_URL": f"s3://{bucket}/{prefix}",
        "LTXSERVE_S3_ENDPOINT_URL": endpoint or S3_URL or "",
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def create_bucket(client: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + 30  # a just-started server may not take writes yet
    while True:
        try:
            client.create_bucket(Bucket=name)
            return name
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def bucket() -> str:
    if not S3_URL:
        if os.environ.get("LTXSERVE_TEST_STRICT"):
            pytest.fail("LTXSERVE_TEST_STRICT is set but LTXSERVE_TEST_S3_ENDPOINT is not")
        pytest.skip("S3 server not configured (set LTXSERVE_TEST_S3_ENDPOINT)")
    return create_bucket(s3_client())


def keys_under(bucket: str, prefix: str) -> list[str]:
    return list(sizes_under(bucket, prefix))


def sizes_under(bucket: str, prefix: str) -> dict[str, int]:
    """Every object under ``prefix``: its key and size in bytes."""
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"]: int(obj["Size"]) for page in pages for obj in page.get("Contents", [])}
