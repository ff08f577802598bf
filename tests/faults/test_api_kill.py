"""SIGKILL an API process during 500 concurrent submissions.

Two API processes share the load (a load balancer's round robin) and three workers
run the jobs. Once the victim has answered a quarter of its share, it is SIGKILLed
with the rest of its requests in flight. What must hold:

- every job that got a 202 is in the store (seen through the surviving API) and
  ends terminal: a 202 is a promise the submit transaction kept;
- the requests the victim never answered fail at the transport (the client's cue to
  retry), never with a 5xx, and nothing the survivor answers is a 500;
- a request the victim committed but could not answer (a job without a 202) still
  runs to the end: it is a job like the others, never half-written.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from tests.faults.cluster import JOB, SLOW, Cluster
from tests.support import assert_schema

pytestmark = SLOW

SUBMISSIONS = 500
KILL_AT = SUBMISSIONS // 10  # of the victim's 250
KILLER = """
import os, signal, sys, time
import psycopg
url, key, at, pgid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + 60
with psycopg.connect(url, autocommit=True) as conn:
    while time.monotonic() < deadline:
        (n,) = conn.execute("SELECT count(*) FROM jobs WHERE api_key_id = %s", [key]).fetchone()
        if n >= at:
            os.killpg(pgid, signal.SIGKILL)
            print(n)
            break
        time.sleep(0.002)
"""


async def _submit_all(urls: list[str], keys: list[str]) -> list[tuple[int, str, Any]]:
    """All submissions at once, alternating between the APIs (each with its own key).
    Returns (api index, outcome, detail) for each."""
    limits = httpx.Limits(max_connections=SUBMISSIONS, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def one(i: int) -> tuple[int, str, Any]:
            api = i % len(urls)
            headers = {"Authorization": f"Bearer {keys[api]}"}
            try:
                r = await http.post(f"{urls[api]}/v2/text-to-video", json=JOB, headers=headers)
            except httpx.TransportError as exc:
                return api, "transport", type(exc).__name__
            if r.status_code == 202:
                return api, "202", r.json()["id"]
            return api, str(r.status_code), r

        return await asyncio.gather(*(one(i) for i in range(SUBMISSIONS)))


def test_sigkill_api_during_concurrent_submissions(
    pg_url: str, cluster: Callable[[str], Cluster], report: Callable[[str], None]
) -> None:
    started = time.monotonic()
    c = cluster(pg_url)
    victim, survivor = c.start_api(), c.start_api()
    for _ in range(3):
        c.start_worker()
    c.wait_ready(c.workers)
    # The victim's share is submitted with a key of its own, so the store tells whose
    # jobs are whose. The kill follows the server's progress, not the client's (which
    # reads answers later than they are sent), from a process of its own (the client's
    # event loop would starve a thread): once the victim has committed KILL_AT jobs it
    # is killed, with most of its share answered late or still in flight.
    victim_key = victim.cli("keys", "create", "--name", "victim-share").strip().split()[-1]
    with c.db.connect() as conn:
        victim_key_id = conn.execute(
            text("SELECT id FROM api_keys WHERE name = 'victim-share'")
        ).scalar_one()
    assert victim.proc is not None
    killer = subprocess.Popen(
        [sys.executable, "-c", KILLER, c.db_url.replace("+psycopg", ""), victim_key_id]
        + [str(KILL_AT), str(victim.proc.pid)],
        stdout=subprocess.PIPE,
        text=True,
    )
    keys = [victim_key, c.key]
    outcomes = asyncio.run(_submit_all([victim.base_url, survivor.base_url], keys))
    out, _ = killer.communicate(timeout=60)
    killed_at = [int(out)] if killer.returncode == 0 and out.strip() else []
    assert killed_at, "the victim was never killed"
    assert victim.proc is not None and victim.proc.wait(10) == -signal.SIGKILL

    by_api = [Counter(o for a, o, _ in outcomes if a == n) for n in (0, 1)]
    accepted = [d for _, o, d in outcomes if o == "202"]
    assert len(set(accepted)) == len(accepted)
    # the survivor answered everything; an answer other than 202 can only be a bounded
    # 503 with its envelope (pool saturated), never a 500 or a dropped connection
    for api, outcome, detail in outcomes:
        if outcome not in ("202", "transport"):
            assert outcome == "503", (api, outcome, detail.text)
            assert_schema(detail.json(), "Error")
            assert detail.headers.get("retry-after"), detail.headers
        if api == 1:
            assert outcome != "transport", detail
    assert by_api[0]["transport"] > 0, by_api  # the kill did cut requests off

    # every 202 is in the store, as the surviving API shows
    with httpx.Client(base_url=survivor.base_url, timeout=30) as http:
        for api, outcome, job_id in outcomes:
            if outcome == "202":
                auth = {"Authorization": f"Bearer {keys[api]}"}
                r = http.get(f"/v2/text-to-video/{job_id}", headers=auth)
                assert r.status_code == 200, r.text
    # ... and ends terminal, like any job the victim committed without answering
    in_store = c.statuses()
    unanswered = sorted(set(in_store) - set(accepted))
    with c.db.connect() as conn:
        victim_committed = conn.execute(
            text("SELECT count(*) FROM jobs WHERE api_key_id = :k"), {"k": victim_key_id}
        ).scalar_one()
    assert victim_committed >= KILL_AT
    final = c.wait_all_terminal(list(in_store), timeout=240)
    counts = Counter(final.values())
    assert counts["completed"] == len(final), counts
    assert "Traceback" not in survivor.log(), survivor.log()[-3000:]
    report(
        f"submissions={SUBMISSIONS} accepted_202={len(accepted)} "
        f"killed_at_rows={killed_at[0]} victim={dict(by_api[0])} survivor={dict(by_api[1])} "
        f"victim_committed={victim_committed} committed_without_202={len(unanswered)} "
        f"in_store={len(in_store)} "
        f"completed={counts['completed']} lost=0 wall={time.monotonic() - started:.1f}s"
    )
