"""Restart PostgreSQL under load: bounded 503s while it is away, recovery without restarts.

A PostgreSQL of the test's own (own port and data dir; never the shared one) serves
one API process and two workers. Jobs that last ~1 s are in flight and a client keeps
submitting and polling when the database is stopped (``pg_ctl stop -m fast``, which
also cuts every open connection) for a few seconds and started again. What must hold:

- while it is away, every answer comes within the client's timeout and is a 503 with
  the error envelope and ``Retry-After`` (or a 2xx served before or after the gap):
  never a hang, never a 500, never a dropped connection;
- afterwards the same API and worker processes (same pids, none restarted) take new
  jobs to completion, and every job in flight at the stop ends terminal.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests.faults.cluster import JOB, SLOW, Cluster, Ticker, private_postgres, submit_many
from tests.support import assert_schema

pytestmark = SLOW

DB_TIMEOUT = 2.0  # LTXSERVE_DB_TIMEOUT_SECONDS: the longest wait on the database
CLIENT_TIMEOUT = 10.0  # far above DB_TIMEOUT: an answer later than this is a hang
DOWN_SECONDS = 6.0


class Load:
    """A client that submits one job and polls one in-flight job every 0.1 s, and
    records every answer: (phase, what, status or error, seconds, response)."""

    def __init__(self, base_url: str, key: str, poll: tuple[str, str]) -> None:
        self.http = httpx.Client(
            base_url=base_url, timeout=CLIENT_TIMEOUT, headers={"Authorization": f"Bearer {key}"}
        )
        self.poll_key, self.poll_id = poll
        self.phase = "before"
        self.seen: list[tuple[str, str, str, float, httpx.Response | None]] = []
        self.accepted: list[str] = []
        self.lock = threading.Lock()

    def _call(self, what: str, method: str, url: str, **kw: Any) -> None:
        phase, t0 = self.phase, time.monotonic()
        try:
            r: httpx.Response | None = self.http.request(method, url, **kw)
            outcome = str(r.status_code) if r is not None else ""
        except httpx.HTTPError as exc:
            r, outcome = None, type(exc).__name__
        with self.lock:
            self.seen.append((phase, what, outcome, time.monotonic() - t0, r))
            if what == "submit" and outcome == "202" and r is not None:
                self.accepted.append(r.json()["id"])

    def tick(self) -> None:
        self._call("submit", "POST", "/v2/text-to-video", json=JOB)
        auth = {"Authorization": f"Bearer {self.poll_key}"}
        self._call("poll", "GET", f"/v2/text-to-video/{self.poll_id}", headers=auth)


def test_postgres_restart_under_load(
    cluster: Callable[[str], Cluster], report: Callable[[str], None]
) -> None:
    started = time.monotonic()
    with private_postgres() as pg:
        c = cluster(pg.url)
        c.env["LTXSERVE_DB_TIMEOUT_SECONDS"] = str(DB_TIMEOUT)
        api = c.start_api()
        c.install_audit()
        workers = [c.start_worker(), c.start_worker()]
        c.wait_ready(workers)
        pids = [api.proc.pid if api.proc else 0] + [w.proc.pid if w.proc else 0 for w in workers]
        slow = api.cli("keys", "create", "--name", "slow", "--simulate", "processing=1")
        slow_key = slow.strip().splitlines()[-1]

        in_flight = submit_many([api.base_url], slow_key, 8, threads=4)
        load = Load(api.base_url, c.key, (slow_key, in_flight[0]))
        ticker = Ticker(load.tick, 0.1)
        ticker.start()
        time.sleep(1.5)  # jobs running, others queued, the client busy
        assert Counter(c.statuses(in_flight).values())["processing"] >= 1

        load.phase = "down"
        pg.stop("fast")
        down_at = time.monotonic()
        time.sleep(DOWN_SECONDS)
        load.phase = "restarting"
        pg.start()
        load.phase = "after"
        up_after = time.monotonic() - down_at
        # recovery: the same processes take new jobs to completion
        deadline = time.monotonic() + 30
        while not any(p == "after" and w == "submit" and o == "202" for p, w, o, *_ in load.seen):
            assert time.monotonic() < deadline, Counter((p, o) for p, _, o, *_ in load.seen)
            time.sleep(0.1)
        recovered_in = time.monotonic() - down_at - up_after
        ticker.stop()
        load.http.close()

        after = submit_many([api.base_url], c.key, 10, threads=4)
        every = in_flight + load.accepted + after
        final = c.wait_all_terminal(every, timeout=60)
        alive = [api.proc.pid if api.proc and api.proc.poll() is None else 0] + [
            w.proc.pid if w.alive() and w.proc else 0 for w in workers
        ]
        logs = {"api": api.log(), **{f"worker{n}": w.log() for n, w in enumerate(workers)}}
        audit = c.audit()
        c.stop()  # before its database goes

    assert alive == pids, ("a process died (none is restarted here)", logs)
    assert len(c.workers) == 2  # and none was replaced
    # every answer was bounded and documented: 2xx, or a 503 with envelope + Retry-After
    outcomes = Counter((p, w, o) for p, w, o, *_ in load.seen)
    slowest = max(s for *_, s, _ in load.seen)
    for phase, what, outcome, seconds, r in load.seen:
        assert seconds < CLIENT_TIMEOUT, (phase, what, outcome, seconds)
        assert outcome in ("200", "202", "503"), (phase, what, outcome, r.text if r else "")
        if outcome == "503":
            assert r is not None
            assert_schema(r.json(), "Error")
            assert r.json()["error"]["type"] == "service_unavailable", r.text
            assert int(r.headers["retry-after"]) >= 1, r.headers
    down_503 = sum(n for (p, _, o), n in outcomes.items() if p == "down" and o == "503")
    assert down_503 >= 10, outcomes  # the outage was seen, and answered
    for name, text_ in logs.items():
        assert "Traceback" not in text_, (name, text_[-4000:])
    # jobs in flight, submitted around the gap and after it: all terminal, none twice
    counts = Counter(final.values())
    assert set(counts) <= {"completed", "failed"}, counts
    assert all(final[i] == "completed" for i in after), final
    into_terminal = Counter(a.job_id for a in audit if a.new_status in ("completed", "failed"))
    assert all(into_terminal[i] == 1 for i in every)
    report(
        f"down={DOWN_SECONDS:.0f}s answers={len(load.seen)} during_outage="
        f"{dict(Counter(o for p, _, o, *_ in load.seen if p == 'down'))} "
        f"slowest_answer={slowest:.2f}s (client timeout {CLIENT_TIMEOUT:.0f}s, db timeout "
        f"{DB_TIMEOUT:.0f}s) first_202_after_restart={recovered_in:.1f}s in_flight="
        f"{len(in_flight)} submitted_around_gap={len(load.accepted)} after={len(after)} "
        f"completed={counts['completed']} failed={counts['failed']} processes_restarted=0 "
        f"wall={time.monotonic() - started:.1f}s"
    )
