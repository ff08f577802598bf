"""Credits over HTTP (docs/credits.md): 402 with the documented message, a charge on
completion, a release on failure, and exactly one charge when the worker running
the job is SIGKILLed and another worker finishes it after the lease ran out, on
SQLite and PostgreSQL. Balances are topped up and read with `ltxserve keys`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from ltxserve.config import Settings
from ltxserve.jobs.store.db import open_store
from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error, wait_terminal

COST = 8  # T2V: ltx-2-3-fast at 1280x720 (the 1080p tier, 4 credits/s) for 2 s
ON = {"LTXSERVE_CREDITS": "true"}


def credits(c: httpx.Client) -> dict[str, object]:
    r = c.get("/v2/credits")
    assert r.status_code == 200, r.text
    return dict(r.json())


def history(srv: Server, key: str) -> list[list[str]]:
    """`ltxserve keys history`, oldest first, as fields (id, time, kind, amount, ...)."""
    out = srv.cli("keys", "history", key)
    return [line.split("\t") for line in reversed(out.strip().splitlines())]


def new_key(srv: Server, *flags: str) -> str:
    return srv.cli("keys", "create", *flags).strip().splitlines()[-1]


def test_402_charge_and_release(make_server: Callable[..., Server]) -> None:
    srv = make_server(env=ON)
    with srv.client() as c:
        assert credits(c) == {"enabled": True, "balance": 0, "held": 0}
        # a key that was never topped up has nothing: the estimate does not fit
        assert_error(
            c.post("/v2/text-to-video", json=T2V),
            402,
            "insufficient_funds_error",
            f"Insufficient funds. Required: {COST} credits",
        )
        assert c.post("/v1/text-to-video", json=T2V).status_code == 402  # v1 holds too
        longer = {**T2V, "duration": 5}  # 20 credits: the message says so, rounded up
        assert c.post("/v2/text-to-video", json=longer).json()["error"]["message"] == (
            "Insufficient funds. Required: 20 credits"
        )

        out = srv.cli("keys", "top-up", srv.api_key, "10", "--note", "trial")
        assert "balance 10 credits" in out and srv.api_key not in out
        job = c.post("/v2/text-to-video", json=T2V)
        assert job.status_code == 202, job.text
        assert_error(  # 2 left while the first job holds 8
            c.post("/v2/text-to-video", json=T2V), 402, "insufficient_funds_error", str(COST)
        )
        assert wait_terminal(c, "text-to-video", job.json()["id"])["status"] == "completed"
        assert credits(c) == {"enabled": True, "balance": 10 - COST, "held": 0}
    rows = history(srv, srv.api_key)
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("top_up", "+10", "balance=10"),
        ("hold", f"-{COST}", f"balance={10 - COST}"),
        ("charge", str(COST), f"balance={10 - COST}"),
    ]
    assert rows[0][-1] == "trial" and rows[1][5] == rows[2][5] == f"job={job.json()['id']}"
    shown = srv.cli("keys", "show", srv.api_key[:10])
    assert f"balance {10 - COST} credits, held 0" in shown

    # a job that fails gives its hold back, whole
    failing = new_key(srv, "--simulate", "processing=2,fail=api_error")  # held meanwhile
    srv.cli("keys", "top-up", failing, str(COST))
    with srv.client(failing) as c:
        job = c.post("/v2/text-to-video", json=T2V)
        assert job.status_code == 202, job.text
        assert credits(c)["held"] == COST
        assert wait_terminal(c, "text-to-video", job.json()["id"])["status"] == "failed"
        assert credits(c) == {"enabled": True, "balance": COST, "held": 0}
    assert [r[2] for r in history(srv, failing)] == ["top_up", "hold", "release"]


def test_off_by_default(make_server: Callable[..., Server]) -> None:
    srv = make_server()
    with srv.client() as c:
        assert credits(c) == {"enabled": False, "balance": 0, "held": 0}
        job = c.post("/v2/text-to-video", json=T2V)
        assert job.status_code == 202
        assert wait_terminal(c, "text-to-video", job.json()["id"])["status"] == "completed"
    assert history(srv, srv.api_key) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def db_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    env = {**ON, "LTXSERVE_SECRET": "shared", "LTXSERVE_LEASE_SECONDS": "2"}
    if request.param == "sqlite":
        yield env
    else:
        for url in pg_database():
            yield {**env, "LTXSERVE_DATABASE_URL": url}


def wait_processing(c: httpx.Client, job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.get(f"/v2/text-to-video/{job_id}").json()["status"] == "processing":
            return
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never processing")


def test_charged_once_when_the_worker_is_killed_mid_job(
    make_server: Callable[..., Server], db_env: dict[str, str]
) -> None:
    srv = make_server(env=db_env, workers=0)
    slow = new_key(srv, "--simulate", "processing=4")  # the job runs 4 s in each attempt
    srv.cli("keys", "top-up", slow, "100")
    first, first_log = srv.spawn_worker()
    second: subprocess.Popen[bytes] | None = None
    try:
        with srv.client(slow) as c:
            job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
            wait_processing(c, job_id)
            time.sleep(0.5)  # mid-job: it has reported progress
            assert c.get(f"/v2/text-to-video/{job_id}").json()["status"] == "processing"
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            assert credits(c) == {"enabled": True, "balance": 100 - COST, "held": COST}
            second, second_log = srv.spawn_worker()  # claims it once the lease has run out
            body = wait_terminal(c, "text-to-video", job_id, timeout=120)
            assert body["status"] == "completed", (body, second_log.read_text())
            assert credits(c) == {"enabled": True, "balance": 100 - COST, "held": 0}
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    url = db_env.get("LTXSERVE_DATABASE_URL")
    store = open_store(Settings(data_dir=srv.data_dir, database_url=url))
    try:
        job = store.get(job_id)
        assert job is not None and job.attempts == 2, (job, first_log.read_text())
        key_id = next(k["id"] for k in store.list_keys() if slow.startswith(k["prefix"]))
        ledger = [(e.kind, e.amount, e.job_id) for e in reversed(store.credit_history(key_id))]
    finally:
        store.engine.dispose()
    assert ledger == [("top_up", 100, None), ("hold", COST, job_id), ("charge", COST, job_id)]
    kinds = [r[2] for r in history(srv, slow)]
    assert kinds == ["top_up", "hold", "charge"], kinds
