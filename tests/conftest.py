from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Server

ENGINE = os.environ.get("LTXSERVE_TEST_ENGINE", "minimal")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared server (API + 1 worker) for tests that only submit and poll."""
    srv = Server(tmp_path_factory.mktemp("server"), engine=ENGINE).start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with their own settings (env) and data dirs; stopped after the test."""
    started: list[Server] = []

    def make(env: dict[str, str] | None = None, workers: int = 1, engine: str = ENGINE,
             data_dir: Path | None = None) -> Server:
        srv = Server(data_dir or tmp_path / f"srv{len(started)}", env=env or {},
                     workers=workers, engine=engine).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
