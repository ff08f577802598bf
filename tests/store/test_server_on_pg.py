"""The whole server with PostgreSQL as the job store (the scale-out configuration)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, wait_terminal


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database()


def test_two_workers_on_postgres(make_server: Callable[..., Server], pg_url: str) -> None:
    srv = make_server(env={"LTXSERVE_DATABASE_URL": pg_url}, workers=2)
    with srv.client() as c:
        ids = [c.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(4)]
        for job_id in ids:
            assert wait_terminal(c, "text-to-video", job_id)["status"] == "completed"
