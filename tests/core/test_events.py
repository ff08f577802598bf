"""Live events over real HTTP on SQLite (one machine: the API polls job versions).

GET /v2/{endpoint}/{id}/events: the state at connect, each status and progress change,
the terminal object last (equal to what the poll answers), then the end; resumable
with Last-Event-ID; the poll's 404 rules; a client that hangs up frees its stream; a
SIGTERM to the server ends open streams at once instead of holding the drain."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.sse import Event, events, frames, streams_open
from tests.support import Server, assert_error, assert_schema

EP = "text-to-video"


def slow_key(srv: Server, seconds: float) -> str:
    out = srv.cli("keys", "create", "--name", "slow", "--simulate", f"processing={seconds}")
    return out.strip().splitlines()[-1]


@pytest.fixture
def srv(make_server: Callable[..., Server]) -> Server:
    return make_server(env={"LTXSERVE_EVENTS_KEEPALIVE_SECONDS": "0.5"})


def check_sequence(evs: list[Event]) -> None:
    assert evs, "no events"
    ids = [int(e.id or -1) for e in evs]
    assert ids == sorted(set(ids)), ids  # strictly increasing: no repeats
    for e in evs:
        assert e.event == "status"
        assert_schema(e.data, "V2JobStatusResponse")
    assert all(e.data["status"] in ("pending", "processing") for e in evs[:-1]), evs
    assert evs[-1].data["status"] in ("completed", "failed")


def test_stream_follows_a_job_to_its_end(srv: Server) -> None:
    with srv.client(slow_key(srv, 2)) as c:
        job_id = c.post(f"/v2/{EP}", json=T2V).json()["id"]
        evs = events(c, EP, job_id)
        check_sequence(evs)
        assert evs[-1].data == c.get(f"/v2/{EP}/{job_id}").json()  # the poll's object
        assert evs[-1].data["status"] == "completed"
        progress = [e.data["progress"] for e in evs if "progress" in e.data]
        assert len(progress) >= 2 and progress == sorted(progress), progress
        assert any(e.data["status"] == "processing" for e in evs)


def test_last_event_id_resumes_without_repeats(srv: Server) -> None:
    with srv.client(slow_key(srv, 3)) as c:
        job_id = c.post(f"/v2/{EP}", json=T2V).json()["id"]
        seen: list[Event] = []
        with c.stream("GET", f"/v2/{EP}/{job_id}/events") as resp:  # leave mid-job
            for f in frames(resp):
                if isinstance(f, Event):
                    seen.append(f)
                    if "progress" in f.data:
                        break
        rest = events(c, EP, job_id, last_event_id=seen[-1].id)
        assert rest and int(rest[0].id or -1) > int(seen[-1].id or -1), (seen, rest)
        check_sequence(seen + rest)
        # reconnecting with the terminal id: nothing more to send, the stream ends
        assert events(c, EP, job_id, last_event_id=rest[-1].id) == []
        # with an older id, or none, or one that is not ours: the terminal object once
        for last in (seen[-1].id, None, "garbage"):
            again = events(c, EP, job_id, last_event_id=last)
            assert [e.data for e in again] == [rest[-1].data], last


def test_same_rules_as_the_poll(srv: Server) -> None:
    other = srv.cli("keys", "create", "--name", "other").strip().splitlines()[-1]
    with srv.client() as c:
        job_id = c.post(f"/v2/{EP}", json=T2V).json()["id"]
        with srv.client(other) as o:
            assert_error(o.get(f"/v2/{EP}/{job_id}/events"), 404, "not_found_error", job_id)
        assert_error(c.get(f"/v2/image-to-video/{job_id}/events"), 404, "not_found_error")
        assert_error(c.get(f"/v2/no-such-endpoint/{job_id}/events"), 404, "not_found_error")
        assert_error(c.get(f"/v2/{EP}/{'0' * 36}/events"), 404, "not_found_error")
        r = httpx.get(f"{srv.base_url}/v2/{EP}/{job_id}/events")
        assert_error(r, 401, "authentication_error")


def test_keepalive_and_disconnect_frees_the_stream(srv: Server) -> None:
    with srv.client(slow_key(srv, 60)) as c:
        job_id = c.post(f"/v2/{EP}", json=T2V).json()["id"]
        comments = 0
        with c.stream("GET", f"/v2/{EP}/{job_id}/events") as resp:
            for f in frames(resp):
                if isinstance(f, str) and "keep-alive" in f:
                    comments += 1
                    if comments == 2:
                        assert streams_open(srv.base_url) == 1
                        break  # (httpx closes the connection here)
            assert comments == 2
        # the client hung up: the server's stream goes at once, not at its next write
        deadline = time.monotonic() + 5
        while streams_open(srv.base_url) != 0:
            assert time.monotonic() < deadline, "stream still open after the client left"
            time.sleep(0.05)


def test_shutdown_ends_streams_and_does_not_wait_for_them(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server(workers=0)  # the job never starts: the stream would wait forever
    assert srv.proc is not None
    with srv.client() as c:
        job_id = c.post(f"/v2/{EP}", json=T2V).json()["id"]
        ended = threading.Event()

        def listen() -> None:
            with c.stream("GET", f"/v2/{EP}/{job_id}/events") as resp:
                for _ in frames(resp):
                    pass
            ended.set()

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while streams_open(srv.base_url) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)  # the API alone (docs/operations.md)
        assert ended.wait(10), "stream not ended by the shutdown"
        srv.proc.wait(15)
        assert time.monotonic() - start < 8  # the grace is 30 s: the drain did not wait it out
