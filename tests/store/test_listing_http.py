"""GET /v2/jobs over real HTTP: pages stay stable while another API process adds jobs
(SQLite and PostgreSQL), filters, other keys' jobs invisible, retention, and a 400
envelope for every malformed parameter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error, assert_schema, wait_terminal

SIM = "X-Ltxserve-Simulate"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    env = {"LTXSERVE_SECRET": "shared"}
    if request.param == "sqlite":
        yield env  # two servers on one data dir share its SQLite file
    else:
        for url in pg_database():
            yield {**env, "LTXSERVE_DATABASE_URL": url}


def _all_pages(c: httpx.Client, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        q = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = c.get("/v2/jobs", params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["data"])
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return pages
        cursor = body["next_cursor"]


def test_pages_stay_stable_while_jobs_are_added(
    make_server: Callable[..., Server], shared_env: dict[str, str]
) -> None:
    first = make_server(env=shared_env, workers=0)
    second = make_server(env=shared_env, workers=0, data_dir=first.data_dir)
    with first.client() as c:
        before = [c.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(40)]
    stop = threading.Event()
    added: list[str] = []

    def keep_adding() -> None:  # through the other API process, all the while
        with second.client(first.api_key) as c2:
            while not stop.is_set():
                r = c2.post("/v2/text-to-video", json=T2V)
                assert r.status_code == 202, r.text
                added.append(r.json()["id"])

    adder = threading.Thread(target=keep_adding)
    adder.start()
    try:
        while len(added) < 3:
            time.sleep(0.05)
        with first.client() as c:
            pages = []
            cursor = None
            while True:
                q: dict[str, Any] = {"limit": 6, **({"cursor": cursor} if cursor else {})}
                body = c.get("/v2/jobs", params=q).json()
                pages.append(body["data"])
                time.sleep(0.05)  # let jobs arrive between pages
                if not body["has_more"]:
                    break
                cursor = body["next_cursor"]
    finally:
        stop.set()
        adder.join()
    listed = [j["id"] for page in pages for j in page]
    assert len(added) >= 5, "jobs must have been added while paging"
    assert len(listed) == len(set(listed)), "a job was listed twice"
    assert set(before) <= set(listed), "a job that existed before paging was skipped"
    stamps = [(j["created_at"], j["id"]) for page in pages for j in page]
    assert stamps == sorted(stamps, reverse=True), "not newest first"
    assert all(len(p) == 6 for p in pages[:-1])


def test_filters_items_and_other_keys(make_server: Callable[..., Server]) -> None:
    srv = make_server(env={"LTXSERVE_RETENTION_SECONDS": "4"})
    sim_key = srv.cli("keys", "create", "--name", "sim", "--simulate", "allow").split()[-1]
    other_key = srv.cli("keys", "create", "--name", "other").split()[-1]
    with srv.client(sim_key) as c, srv.client(other_key) as o:
        done = c.post("/v2/text-to-video", json=T2V).json()
        time.sleep(0.01)
        failed = c.post(
            "/v2/text-to-video", json=T2V, headers={SIM: "fail=content_filtered_error"}
        ).json()
        wait_terminal(c, "text-to-video", done["id"])
        wait_terminal(c, "text-to-video", failed["id"])
        time.sleep(0.01)
        slow = c.post("/v2/text-to-video", json=T2V, headers={SIM: "processing=20"}).json()
        theirs = o.post("/v2/text-to-video", json=T2V).json()

        body = c.get("/v2/jobs").json()
        assert [j["id"] for j in body["data"]] == [slow["id"], failed["id"], done["id"]]
        assert body["has_more"] is False and body["next_cursor"] is None
        for item in body["data"]:
            assert item["endpoint"] == "text-to-video"
            assert_schema({k: v for k, v in item.items() if k != "endpoint"}, "V2JobStatusResponse")
            if item["status"] in ("completed", "failed"):  # as the poll answers it
                poll = c.get(f"/v2/text-to-video/{item['id']}").json()
                assert item == {**poll, "endpoint": "text-to-video"}
        completed = body["data"][2]
        assert completed["status"] == "completed"
        assert httpx.get(completed["result"]["video_url"]).status_code == 200

        def ids(**params: Any) -> list[str]:
            r = c.get("/v2/jobs", params=params)
            assert r.status_code == 200, r.text
            return [j["id"] for j in r.json()["data"]]

        assert ids(status="failed") == [failed["id"]]
        assert ids(status="completed,failed") == [failed["id"], done["id"]]
        assert ids(status=["processing", "pending"]) == [slow["id"]]
        assert ids(endpoint="retake") == []
        assert ids(endpoint="retake,text-to-video", limit=1) == [slow["id"]]
        assert ids(created_after=failed["created_at"]) == [slow["id"]]
        assert ids(created_before=failed["created_at"]) == [done["id"]]
        assert ids(created_after=done["created_at"], created_before=slow["created_at"]) == [
            failed["id"]
        ]
        assert [j["id"] for j in o.get("/v2/jobs").json()["data"]] == [theirs["id"]]
        # retention over: the ended jobs are no longer listed (nor polled)
        time.sleep(4.5)
        assert ids() == [slow["id"]]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status 'done'"),
        ({"endpoint": "text-to-image"}, "endpoint"),
        ({"created_after": "yesterday"}, "ISO 8601"),
        ({"created_before": "2026-13-01"}, "ISO 8601"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "MTIzLi4uLw"}, "cursor"),  # base64url of "123.../": not a job id
        ({"statuses": "failed"}, "unknown query parameter 'statuses'"),
    ],
)
def test_malformed_parameters_are_400(server: Server, params: dict[str, str], says: str) -> None:
    with server.client() as c:
        assert_error(c.get("/v2/jobs", params=params), 400, "invalid_request_error", says)


def test_listing_needs_a_key(server: Server) -> None:
    assert_error(httpx.get(f"{server.base_url}/v2/jobs"), 401, "authentication_error")
