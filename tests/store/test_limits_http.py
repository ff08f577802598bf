"""The limits over real HTTP (docs/limits.md), each across two API processes on one
database (SQLite: one file; PostgreSQL): per-key concurrency with its real default of
2 and `ltxserve keys` overrides, the per-key token bucket, the server-wide queue depth.
Every refusal is the documented envelope with Retry-After; the two processes share
one count because it lives in the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error


@pytest.fixture(params=["sqlite", "postgresql"])
def db_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    env = {"LTXSERVE_SECRET": "shared"}
    if request.param == "sqlite":
        yield env  # the two servers share one data dir, hence one SQLite file
    else:
        for url in pg_database():
            yield {**env, "LTXSERVE_DATABASE_URL": url}


class DefaultsServer(Server):
    """A server whose limit settings are the release's own, not the test harness's."""

    def full_env(self) -> dict[str, str]:
        env = super().full_env()
        if "LTXSERVE_MAX_UNFINISHED_PER_KEY" not in self.env:
            env.pop("LTXSERVE_MAX_UNFINISHED_PER_KEY", None)
        return env


Pair = Callable[[dict[str, str]], tuple[Server, Server]]


@pytest.fixture
def pair(tmp_path: Path, db_env: dict[str, str]) -> Iterator[Pair]:
    """Two API processes (no workers: every job stays pending) on one database."""
    started: list[Server] = []

    def make(env: dict[str, str]) -> tuple[Server, Server]:
        first = DefaultsServer(tmp_path / "d", env={**db_env, **env}, workers=0).start()
        started.append(first)
        second = DefaultsServer(
            tmp_path / "d", env={**db_env, **env}, workers=0, api_key=first.api_key
        ).start()
        started.append(second)
        return first, second

    yield make
    for srv in started:
        srv.stop()


async def _burst(servers: list[Server], keys: list[str], n: int) -> list[httpx.Response]:
    """``n`` submits at once, spread over the servers and the keys."""
    clients = [httpx.AsyncClient(base_url=s.base_url, timeout=60) for s in servers]
    try:
        return await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    "/v2/text-to-video",
                    json=T2V,
                    headers={"Authorization": f"Bearer {keys[i % len(keys)]}"},
                )
                for i in range(n)
            )
        )
    finally:
        for c in clients:
            await c.aclose()


def burst(servers: list[Server], keys: list[str], n: int) -> list[httpx.Response]:
    answers = asyncio.run(_burst(servers, keys, n))
    assert {r.request.url.port for r in answers} == {s.port for s in servers}
    return answers


def codes(answers: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in answers)


def test_concurrency_default_is_two_and_keys_override_it(pair: Pair) -> None:
    a, b = pair({})
    answers = burst([a, b], [a.api_key], 10)
    assert codes(answers) == [202] * 2 + [429] * 8  # the release's default: 2
    for r in answers:
        if r.status_code == 429:
            assert_error(r, 429, "concurrency_limit_error", "pending or processing")
            assert r.headers["retry-after"] == "1"

    out = a.cli("keys", "set-limits", a.api_key[:12], "--max-concurrency", "5")
    assert "max-concurrency 5 (this key)" in out, out
    assert codes(burst([a, b], [a.api_key], 10)) == [202] * 3 + [429] * 7  # 5 in all
    a.cli("keys", "set-limits", a.api_key[:12], "--max-concurrency", "unlimited")
    assert codes(burst([a, b], [a.api_key], 6)) == [202] * 6
    out = a.cli("keys", "set-limits", a.api_key[:12], "--max-concurrency", "default")
    assert "max-concurrency 2 (server default)" in out, out
    with b.client() as c:  # 11 pending, default 2 again; v1 is held to it too
        assert_error(c.post("/v2/text-to-video", json=T2V), 429, "concurrency_limit_error")
        assert_error(c.post("/v1/text-to-video", json=T2V), 429, "concurrency_limit_error")

    one = a.cli("keys", "create", "--max-concurrency", "1").strip().splitlines()[-1]
    assert codes(burst([a, b], [one], 6)) == [202] + [429] * 5


def test_rate_limit_token_bucket_across_processes(pair: Pair) -> None:
    a, b = pair(
        {
            "LTXSERVE_MAX_UNFINISHED_PER_KEY": "0",
            "LTXSERVE_RATE_LIMIT_PER_SECOND": "0.2",  # a token every 5 s
            "LTXSERVE_RATE_LIMIT_BURST": "3",
        }
    )
    other = a.cli("keys", "create").strip().splitlines()[-1]
    answers = burst([a, b], [a.api_key], 10)
    assert codes(answers) == [202] * 3 + [429] * 7  # one bucket for both processes
    for r in answers:
        if r.status_code == 429:
            assert_error(r, 429, "rate_limit_error", "per second")
            assert 4 <= int(r.headers["retry-after"]) <= 5  # the time until the next token
    assert codes(burst([a, b], [other], 4)) == [202] * 3 + [429]  # a bucket per key

    # a key's own rate: refills at 4/s from where the bucket was left (empty)
    out = a.cli("keys", "set-limits", a.api_key[:12], "--rate", "4", "--burst", "1")
    assert "rate 4/s (this key); burst 1 (this key)" in out, out
    with b.client() as c:
        first = c.post("/v2/text-to-video", json=T2V)
        if first.status_code == 429:  # the bucket had not reached one token yet
            assert first.headers["retry-after"] == "1"
            time.sleep(0.3)
            first = c.post("/v2/text-to-video", json=T2V)
        assert first.status_code == 202, first.text
        assert_error(c.post("/v2/text-to-video", json=T2V), 429, "rate_limit_error")
        time.sleep(0.3)  # 0.25 s makes a token
        assert c.post("/v2/text-to-video", json=T2V).status_code == 202
    a.cli("keys", "set-limits", a.api_key[:12], "--rate", "unlimited")
    assert codes(burst([a, b], [a.api_key], 6)) == [202] * 6


def test_queue_depth_is_server_wide(pair: Pair) -> None:
    a, b = pair({"LTXSERVE_MAX_UNFINISHED_PER_KEY": "0", "LTXSERVE_MAX_PENDING_JOBS": "5"})
    keys = [a.api_key] + [a.cli("keys", "create").strip().splitlines()[-1] for _ in range(2)]
    answers = burst([a, b], keys, 12)
    assert codes(answers) == [202] * 5 + [503] * 7
    for r in answers:
        if r.status_code == 503:
            assert_error(r, 503, "service_unavailable", "queue is full")
            assert r.headers["retry-after"] == "5"
