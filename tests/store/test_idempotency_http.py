"""Idempotency-Key over real HTTP: the same key and body answer the same job (202, same
body, Idempotent-Replayed), another body a 409, keys are per API key, malformed keys a
400; concurrent duplicates through two API processes make one job (SQLite and
PostgreSQL); keys expire; a v1 retry with its key gets the same video."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error

KEY = "Idempotency-Key"
SLOW_INSERT = """
CREATE FUNCTION slow_insert() RETURNS trigger AS $$
BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER slow_insert BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION slow_insert();
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    env = {"LTXSERVE_SECRET": "shared"}
    if request.param == "sqlite":
        yield env  # two servers on one data dir share its SQLite file
    else:
        for url in pg_database():
            yield {**env, "LTXSERVE_DATABASE_URL": url}


def _listed(c: httpx.Client) -> list[str]:
    return [j["id"] for j in c.get("/v2/jobs", params={"limit": 100}).json()["data"]]


def test_same_key_same_job_other_body_409(make_server: Callable[..., Server]) -> None:
    srv = make_server(workers=0)
    other_key = srv.cli("keys", "create", "--name", "other").split()[-1]
    with srv.client() as c, srv.client(other_key) as o:
        first = c.post("/v2/text-to-video", json=T2V, headers={KEY: "order-1"})
        assert first.status_code == 202 and "idempotent-replayed" not in first.headers
        # same JSON value, other key order and spacing: the same request
        reordered = dict(reversed(list(T2V.items())))
        again = c.post(
            "/v2/text-to-video",
            content=httpx.Request("POST", "/", json=reordered).content.replace(b",", b", "),
            headers={KEY: "order-1", "Content-Type": "application/json"},
        )
        assert again.status_code == 202
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"

        assert_error(
            c.post(
                "/v2/text-to-video", json={**T2V, "prompt": "a blue fox"}, headers={KEY: "order-1"}
            ),
            409,
            "invalid_request_error",
            "order-1",
        )
        # another operation with the key is another request too
        assert_error(
            c.post(
                "/v2/image-to-video",
                json={**T2V, "image_uri": "https://example.com/a.png"},
                headers={KEY: "order-1"},
            ),
            409,
            "invalid_request_error",
        )
        # keys are per API key; without a key every submit is a job
        theirs = o.post("/v2/text-to-video", json=T2V, headers={KEY: "order-1"})
        assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
        plain = [c.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(2)]
        assert len(set(plain)) == 2
        assert sorted(_listed(c)) == sorted([first.json()["id"], *plain])


@pytest.mark.parametrize(
    "value", ["", "x" * 256, "has space", "tab\there", "caf\u00e9".encode("latin-1")]
)
def test_malformed_keys_are_400(server: Server, value: str | bytes) -> None:
    with server.client() as c:
        r = c.post("/v2/text-to-video", json=T2V, headers={KEY: value})
        assert_error(r, 400, "invalid_request_error", "Idempotency-Key must be 1 to 255")


def test_longest_key_is_accepted(server: Server) -> None:
    with server.client() as c:
        headers = {KEY: "~" * 255}
        ids = {c.post("/v2/text-to-video", json=T2V, headers=headers).json()["id"] for _ in "ab"}
        assert len(ids) == 1


async def _burst(servers: list[Server], key: str, n: int) -> list[httpx.Response]:
    clients = [
        httpx.AsyncClient(
            base_url=s.base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {key}", KEY: "burst-1"},
        )
        for s in servers
    ]
    try:
        return await asyncio.gather(
            *(clients[i % len(clients)].post("/v2/text-to-video", json=T2V) for i in range(n))
        )
    finally:
        for c in clients:
            await c.aclose()


def test_concurrent_duplicates_through_two_api_processes_make_one_job(
    make_server: Callable[..., Server], shared_env: dict[str, str]
) -> None:
    first = make_server(env=shared_env, workers=0)
    second = make_server(env=shared_env, workers=0, data_dir=first.data_dir)
    if "LTXSERVE_DATABASE_URL" in shared_env:
        # Each job insert now takes 0.3 s inside its transaction, so the duplicates
        # surely meet there: a lookup made outside the insert's transaction (or
        # without waiting on the first one's uncommitted key) would make several jobs.
        engine = create_engine(shared_env["LTXSERVE_DATABASE_URL"])
        with engine.begin() as conn:
            conn.execute(text(SLOW_INSERT))
        engine.dispose()
    answers = asyncio.run(_burst([first, second], first.api_key, 16))
    assert [r.status_code for r in answers] == [202] * 16, [r.text for r in answers]
    assert len({r.content for r in answers}) == 1  # one id, one created_at
    assert {r.request.url.port for r in answers} == {first.port, second.port}
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 15
    with second.client(first.api_key) as c:
        assert _listed(c) == [answers[0].json()["id"]]


def test_keys_expire(make_server: Callable[..., Server]) -> None:
    srv = make_server(env={"LTXSERVE_IDEMPOTENCY_SECONDS": "1"}, workers=0)
    with srv.client() as c:
        first = c.post("/v2/text-to-video", json=T2V, headers={KEY: "short"}).json()["id"]
        assert c.post("/v2/text-to-video", json=T2V, headers={KEY: "short"}).json()["id"] == first
        time.sleep(1.2)
        # expired (whether the sweeper came by yet or not): a new request with the key is new
        other = c.post("/v2/text-to-video", json={**T2V, "prompt": "p2"}, headers={KEY: "short"})
        assert other.status_code == 202 and other.json()["id"] != first
    time.sleep(2.5)  # the sweeper (every 1 s in tests) deletes expired keys
    import sqlite3

    db = sqlite3.connect(srv.data_dir / "ltxserve.db")
    try:
        assert db.execute("SELECT count(*) FROM idempotency_keys").fetchone() == (0,)
    finally:
        db.close()


def test_a_v1_retry_with_its_key_gets_the_same_video(make_server: Callable[..., Server]) -> None:
    srv = make_server()
    with srv.client() as c:
        one = c.post("/v1/text-to-video", json=T2V, headers={KEY: "sync-1"}, timeout=120)
        two = c.post("/v1/text-to-video", json=T2V, headers={KEY: "sync-1"}, timeout=120)
        assert one.status_code == two.status_code == 200
        assert one.content == two.content and one.headers["content-type"] == "video/mp4"
        assert len(_listed(c)) == 1
        # the v2 form of the same body is another request
        assert_error(
            c.post("/v2/text-to-video", json=T2V, headers={KEY: "sync-1"}),
            409,
            "invalid_request_error",
        )


def test_a_v1_client_that_drops_and_retries_with_its_key_gets_the_same_job(
    make_server: Callable[..., Server],
) -> None:
    """Without a key a v1 disconnect fails the job (tests/inputs/test_v1.py); with one the
    job goes on, and the retry waits for it and answers its video."""
    srv = make_server()
    sim_key = srv.cli("keys", "create", "--name", "sim", "--simulate", "allow").split()[-1]
    slow = {KEY: "sync-drop", "X-Ltxserve-Simulate": "processing=3"}
    with srv.client(sim_key) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/text-to-video", json=T2V, headers=slow, timeout=httpx.Timeout(30, read=1))
        time.sleep(0.5)  # the server has seen the disconnect by now
        (job,) = c.get("/v2/jobs").json()["data"]
        assert job["status"] in ("pending", "processing"), job  # not failed
        again = c.post("/v1/text-to-video", json=T2V, headers=slow, timeout=60)
        assert again.status_code == 200 and again.headers["content-type"] == "video/mp4"
        (done,) = c.get("/v2/jobs").json()["data"]
        assert done["id"] == job["id"] and done["status"] == "completed"
