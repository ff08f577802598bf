"""The whole server with PostgreSQL as the job store (the scale-out configuration)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, wait_terminal


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database()


def test_two_workers_on_postgres(make_server: Callable[..., Server], pg_url: str) -> None:
    """The scale-out layout: an API process (`serve --workers 0`) and two `ltxserve
    worker` processes, each with a data dir of its own, on one PostgreSQL. The blob
    directory is the one thing they share (`blobs` links to the API's, as a shared
    filesystem would), since results are local files the API serves; the S3 store
    will remove even that. Jobs that last 2 s each (client-testing mode), four at
    once: each worker's log must show jobs of its own, and together all four."""
    secret = {"LTXSERVE_DATABASE_URL": pg_url, "LTXSERVE_SECRET": "shared-test-secret"}
    srv = make_server(env=secret, workers=0)
    workers = []
    try:
        for n in range(2):
            own = srv.data_dir.parent / f"worker{n}"
            own.mkdir()
            (own / "blobs").symlink_to(srv.data_dir / "blobs", target_is_directory=True)
            workers.append(srv.spawn_worker(own))
        deadline = time.monotonic() + 60
        while not all("ready with engine" in log.read_text() for _, log in workers):
            assert time.monotonic() < deadline, [log.read_text() for _, log in workers]
            time.sleep(0.1)
        key = srv.cli("keys", "create", "--name", "slow", "--simulate", "processing=2")
        with srv.client(key.strip().splitlines()[-1]) as c:
            ids = [c.post("/v2/text-to-video", json=T2V).json()["id"] for _ in range(4)]
            for job_id in ids:
                assert wait_terminal(c, "text-to-video", job_id)["status"] == "completed"
                # the result a worker stored is served by the API
                body = c.get(f"/v2/text-to-video/{job_id}").json()
                assert httpx.get(body["result"]["video_url"]).status_code == 200
    finally:
        for proc, _ in workers:
            proc.terminate()
            proc.wait(30)
    ran = [set(re.findall(r"job ([\w-]+) completed", log.read_text())) for _, log in workers]
    assert [bool(r) for r in ran] == [True, True], ran  # each worker ran jobs of its own
    assert set().union(*ran) == set(ids) and sum(map(len, ran)) == len(ids), ran
