from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.inputs.mediaserver import MediaServer
from tests.support import Server

ENGINE = os.environ.get("LTXSERVE_TEST_ENGINE", "minimal")
UPLOAD_MAX = 2 * 1024 * 1024  # the inputs server's upload limit


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """HTTPS on loopback, certificate from a throwaway CA."""
    srv = MediaServer(tmp_path_factory.mktemp("media")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def inputs_server(tmp_path_factory: pytest.TempPathFactory, media: MediaServer) -> Iterator[Server]:
    """A server whose configuration opens the loopback media server (and only its port)."""
    srv = Server(
        tmp_path_factory.mktemp("inputs-server"),
        engine=ENGINE,
        env={
            "LTXSERVE_FETCH_ALLOW_HOSTS": f"localhost:{media.port}",
            "LTXSERVE_FETCH_CA_FILE": str(media.ca_file),
            "LTXSERVE_UPLOAD_MAX_BYTES": str(UPLOAD_MAX),
        },
    ).start()
    yield srv
    srv.stop()


def upload(
    client: httpx.Client, data: bytes, content_type: str = "application/octet-stream"
) -> str:
    """The documented flow: POST /v1/upload, PUT the bytes with required_headers; storage_uri."""
    r = client.post("/v1/upload")
    assert r.status_code == 200, r.text
    body = r.json()
    put = httpx.put(
        body["upload_url"],
        content=data,
        headers={**body["required_headers"], "Content-Type": content_type},
    )
    assert put.status_code in (200, 201), put.text
    return str(body["storage_uri"])
