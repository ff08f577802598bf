"""LTXSERVE_MAX_UNFINISHED_PER_KEY over HTTP: a limit of N holds exactly when two API
processes take concurrent submits for one key on one database (the admission check
runs in the insert's transaction), and a refusal is the documented 429 envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error

LIMIT, SUBMITS = 3, 16


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    env = {"LTXSERVE_MAX_UNFINISHED_PER_KEY": str(LIMIT), "LTXSERVE_SECRET": "shared"}
    if request.param == "sqlite":
        yield env  # the two servers share one data dir, hence one SQLite file
    else:
        for url in pg_database():
            yield {**env, "LTXSERVE_DATABASE_URL": url}


async def _burst(servers: list[Server], key: str) -> list[httpx.Response]:
    clients = [
        httpx.AsyncClient(
            base_url=s.base_url, timeout=60, headers={"Authorization": f"Bearer {key}"}
        )
        for s in servers
    ]
    try:
        return await asyncio.gather(
            *(clients[i % len(clients)].post("/v2/text-to-video", json=T2V) for i in range(SUBMITS))
        )
    finally:
        for c in clients:
            await c.aclose()


def test_limit_holds_across_two_api_processes(
    make_server: Callable[..., Server], shared_env: dict[str, str]
) -> None:
    first = make_server(env=shared_env, workers=0)  # no workers: every job stays pending
    second = make_server(env=shared_env, workers=0, data_dir=first.data_dir)
    second_key = first.cli("keys", "create", "--name", "other").strip().splitlines()[-1]

    answers = asyncio.run(_burst([first, second], first.api_key))
    codes = sorted(r.status_code for r in answers)
    assert codes == [202] * LIMIT + [429] * (SUBMITS - LIMIT), codes
    refused = [r for r in answers if r.status_code == 429]
    for r in refused:
        assert_error(r, 429, "concurrency_limit_error", "pending or processing")
        assert r.headers["retry-after"] == "1"
    # both processes admitted or refused: neither answered alone
    by_port = {r.request.url.port for r in answers}
    assert by_port == {first.port, second.port}

    with first.client(second_key) as c:  # the limit is per key
        assert c.post("/v2/text-to-video", json=T2V).status_code == 202
    with second.client(first.api_key) as c:  # still full; v1 is held to it as well
        assert_error(c.post("/v2/text-to-video", json=T2V), 429, "concurrency_limit_error")
        assert_error(c.post("/v1/text-to-video", json=T2V), 429, "concurrency_limit_error")
