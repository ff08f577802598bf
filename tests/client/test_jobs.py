"""The SDK and CLI half of listing and idempotency, against the real server through the
fault proxy: ``client.jobs`` pages and iterates (sync and async), ``idempotency_key=``
answers the same job, every submit carries a key of its own, and a submit whose answer
was lost is retried into the same job, not a second one; ``ltx jobs list``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from ltxserve.client import AsyncClient, Client, InvalidRequestError, TextToVideoRequest
from ltxserve.client.cli import app
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.support import Server


@pytest.fixture
def fresh_key(server: Server) -> str:
    """A key of its own, so the listing holds only this test's jobs."""
    return server.cli("keys", "create", "--name", "jobs-test").split()[-1]


def test_list_pages_and_iter(fresh_key: str, proxy: FaultProxy) -> None:
    with Client(api_key=fresh_key, base_url=proxy.url, **FAST) as c:
        ids = [c.text_to_video.submit(**SMALL).id for _ in range(5)]
        page = c.jobs.list(limit=2)
        assert [j.id for j in page.data] == ids[::-1][:2]
        assert page.has_more and page.next_cursor
        assert all(j.endpoint == "text-to-video" for j in page.data)
        assert [len(p.data) for p in c.jobs.pages(limit=2)] == [2, 2, 1]
        assert [j.id for j in c.jobs.iter(limit=2)] == ids[::-1]
        assert [j.id for j in c.jobs.iter(endpoint=["retake", "extend"])] == []
        since = datetime.now(UTC) - timedelta(hours=1)
        assert (
            len(
                list(
                    c.jobs.iter(created_after=since, status=["pending", "processing", "completed"])
                )
            )
            <= 5
        )
        assert list(c.jobs.iter(created_before=since)) == []
        with pytest.raises(InvalidRequestError, match="status"):
            c.jobs.list(status="done")

    async def run() -> list[str]:
        async with AsyncClient(api_key=fresh_key, base_url=proxy.url, **FAST) as ac:
            first = await ac.jobs.list(limit=3)
            assert len(first.data) == 3 and first.has_more
            return [j.id async for j in ac.jobs.iter(limit=2)]

    assert asyncio.run(run()) == ids[::-1]


def test_idempotency_key_answers_the_same_job(fresh_key: str, proxy: FaultProxy) -> None:
    with Client(api_key=fresh_key, base_url=proxy.url, **FAST) as c:
        a = c.text_to_video.submit(**SMALL, idempotency_key="sdk-1")
        b = c.submit(TextToVideoRequest(**SMALL), idempotency_key="sdk-1")
        assert a.id == b.id
        with pytest.raises(InvalidRequestError) as info:
            c.text_to_video.submit(**{**SMALL, "prompt": "other"}, idempotency_key="sdk-1")
        assert info.value.status_code == 409
        # without one, each call sends a key of its own
        c.text_to_video.submit(**SMALL)
        c.text_to_video.submit(**SMALL)
        keys = [r.headers.get("Idempotency-Key") for r in proxy.requests("POST", "/v2/")]
        assert keys[:2] == ["sdk-1", "sdk-1"]
        assert len(set(keys[3:])) == 2 and all(k.startswith("ltxserve-client-") for k in keys[3:])
        assert len(c.jobs.list().data) == 3


def test_a_lost_answer_is_retried_into_the_same_job(fresh_key: str, proxy: FaultProxy) -> None:
    proxy.lose(times=1, method="POST", path_prefix="/v2/")
    with Client(api_key=fresh_key, base_url=proxy.url, **FAST) as c:
        job = c.text_to_video.submit(**SMALL)
        posts = proxy.requests("POST", "/v2/")
        assert [p.status for p in posts] == [0, 202]  # the first answer never arrived
        assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
        assert [j.id for j in c.jobs.list().data] == [job.id]  # one job, not two


def test_ltx_jobs_list(fresh_key: str, proxy: FaultProxy) -> None:
    with Client(api_key=fresh_key, base_url=proxy.url, **FAST) as c:
        ids = [c.text_to_video.submit(**SMALL).id for _ in range(3)]
    env = {"LTX_BASE_URL": proxy.url, "LTXV_API_KEY": fresh_key}
    runner = CliRunner()
    out = runner.invoke(app, ["jobs", "list", "--limit", "2", "--json"], env=env)
    assert out.exit_code == 0, out.output
    page = json.loads(out.stdout)
    assert [j["id"] for j in page["data"]] == ids[::-1][:2] and page["has_more"]
    more = runner.invoke(app, ["jobs", "list", "--cursor", page["next_cursor"], "--json"], env=env)
    assert [j["id"] for j in json.loads(more.stdout)["data"]] == ids[:1]
    human = runner.invoke(
        app, ["jobs", "list", "--all", "--limit", "1", "--endpoint", "text-to-video"], env=env
    )
    assert human.exit_code == 0, human.output
    lines = human.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ids[::-1]
    assert all("text-to-video" in line for line in lines)
    bad = runner.invoke(app, ["jobs", "list", "--status", "done"], env=env)
    assert bad.exit_code != 0 and "status" in bad.output
