"""Fixtures for the SDK and CLI tests: the real server, a fault proxy, fast clients.

The server is the shared session fixture ``server`` from tests/conftest.py: a real
``ltxserve serve`` subprocess on a loopback port. Every client here talks to it
through ``FaultProxy``, so any test can inject 429/503 answers or dropped
connections. Clients poll every 0.1 s and back off from 0.05 s, so the suite
stays fast. The retry rules are the same; only the intervals are shorter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ltxserve.client import Client
from tests.client.proxy import FaultProxy
from tests.core.media import mp4_bytes, png_bytes, wav_bytes
from tests.support import Server

SMALL: dict[str, Any] = {
    "prompt": "a red fox running through fresh snow",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
    "fps": 24,
}
"""The cheapest valid text-to-video request; every generating test starts from it."""

FAST: dict[str, Any] = {"poll_interval": 0.1, "initial_retry_delay": 0.05, "max_retry_delay": 0.2}


@pytest.fixture(scope="session")
def proxy_server(server: Server) -> Iterator[FaultProxy]:
    with FaultProxy(server.base_url) as proxy:
        yield proxy


@pytest.fixture
def proxy(proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    """The session's proxy with no faults armed and an empty log."""
    proxy_server.reset()
    yield proxy_server
    proxy_server.reset()


@pytest.fixture
def client(server: Server, proxy: FaultProxy) -> Iterator[Client]:
    with Client(api_key=server.api_key, base_url=proxy.url, **FAST) as c:
        yield c


@pytest.fixture
def ltx_env(server: Server, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points the SDK and the CLI at the server (through the proxy)."""
    env = {"LTX_BASE_URL": proxy.url, "LTXV_API_KEY": server.api_key, "LTX_POLL_INTERVAL": "0.1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(128, 72))
    return path


@pytest.fixture
def mp4_file(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4_bytes(320, 180, 24, 80))
    return path


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_bytes(2.5))
    return path
