"""Webhooks over real HTTP: a loopback receiver verifies every signature, answers 500
to the first attempts and sees the retries; one terminal event per job; the attempts
at GET /v2/{endpoint}/{id}/webhooks; an SSRF-refused target is a failed delivery."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.core.test_operations import scrape, value
from tests.store.conftest import pg_database
from tests.support import Server, assert_error, openapi, wait_terminal
from tests.webhooks.receiver import Receiver, signature_ok

T2V = {
    "prompt": "a red fox in snow",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
}


SERVED: dict[str, Any] = {}  # base URL -> components of its /openapi.json


def hook_env(receiver: Receiver) -> dict[str, str]:
    """http:// on loopback needs both openings of the SSRF guard, for this port only."""
    return {
        "LTXSERVE_ALLOW_HTTP": "1",
        "LTXSERVE_FETCH_ALLOW_HOSTS": f"127.0.0.1:{receiver.port}",
        "LTXSERVE_WEBHOOK_RETRY_BASE_SECONDS": "0.4",
        "LTXSERVE_WEBHOOK_RETRY_MAX_SECONDS": "1",
        "LTXSERVE_WEBHOOK_POLL_INTERVAL": "0.1",
    }


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("hooks"), env=hook_env(receiver)).start()
    yield s
    s.stop()


def secret_of(srv: Server, key: str) -> str:
    out = srv.cli("keys", "webhook", key)
    return next(line.split(": ", 1)[1] for line in out.splitlines() if "webhook_secret" in line)


def deliveries(client: httpx.Client, endpoint: str, job_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/v2/{endpoint}/{job_id}/webhooks")
    assert r.status_code == 200, r.text
    body = r.json()
    url = str(client.base_url)
    if url not in SERVED:
        SERVED[url] = client.get("/openapi.json").json()["components"]
    jsonschema.validate(  # the answer is as the served document says
        body,
        {"$ref": "#/components/schemas/WebhookDeliveries", "components": SERVED[url]},
        cls=jsonschema.Draft202012Validator,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert body["job_id"] == job_id
    out: list[dict[str, Any]] = body["deliveries"]
    return out


def wait_delivery(
    client: httpx.Client, endpoint: str, job_id: str, state: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = deliveries(client, endpoint, job_id)
        if found and found[0]["status"] != "pending":
            assert found[0]["status"] == state, found
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {state} delivery for {job_id}: {found}")


def test_signed_event_retried_after_500s_then_delivered_once(
    srv: Server, receiver: Receiver
) -> None:
    secret = secret_of(srv, srv.api_key)
    with srv.client() as c:
        r = c.post("/v2/text-to-video", json={**T2V, "callback_url": receiver.url("/flaky")})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        status = wait_terminal(c, "text-to-video", job_id)
        assert status["status"] == "completed"
        d = wait_delivery(c, "text-to-video", job_id, "succeeded")
        time.sleep(1.5)  # room for a wrong extra send to show up
        hits = receiver.for_job(job_id)
        # two 500s, then the 200: the same message (id, body) each time, freshly signed
        assert [h.answered for h in hits] == [500, 500, 200], hits
        assert {h.headers["webhook-id"] for h in hits} == {d["id"]}
        assert len({h.body for h in hits}) == 1
        for h in hits:
            assert signature_ok(secret, h.headers, h.body), h.headers
            assert abs(int(h.headers["webhook-timestamp"]) - time.time()) < 120
        assert not signature_ok(secret, hits[0].headers, hits[0].body + b" ")
        # backoff: ~0.2-0.4 s before the first retry, ~0.4-0.8 s before the second
        gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
        assert gaps[0] >= 0.15 and gaps[1] >= 0.3, gaps
        event = json.loads(hits[-1].body)
        assert event["type"] == "job.completed" and event["endpoint"] == "text-to-video"
        assert event["data"] == c.get(f"/v2/text-to-video/{job_id}").json()  # the status object
        assert [a["status_code"] for a in d["attempts"]] == [500, 500, 200]
        assert d["event"] == "job.completed" and d["url"] == receiver.url("/flaky")
        assert d["completed_at"] and d["next_attempt_at"] is None


def test_metrics_count_every_attempt(srv: Server, receiver: Receiver) -> None:
    """Two 500s and a 200 for one message: /metrics (parsed by the Prometheus client's
    parser) counts two failed attempts and one delivered, on top of what it had."""
    name = "ltxserve_webhook_deliveries_total"
    before = scrape(srv.base_url)
    with srv.client() as c:
        r = c.post("/v2/text-to-video", json={**T2V, "callback_url": receiver.url("/flaky")})
        job_id = r.json()["id"]
        wait_terminal(c, "text-to-video", job_id)
        wait_delivery(c, "text-to-video", job_id, "succeeded")
    after = scrape(srv.base_url)
    for outcome, more in (("delivered", 1), ("failed", 2)):
        grew = value(after, name, outcome=outcome) - value(before, name, outcome=outcome)
        assert grew == more, (outcome, grew)


def test_key_default_url_carries_the_failed_event(srv: Server, receiver: Receiver) -> None:
    key = srv.cli(
        "keys",
        "create",
        "--simulate",
        "fail=content_filtered_error",
        "--webhook-url",
        receiver.url("/ok"),
    ).splitlines()[-1]
    secret = secret_of(srv, key)
    with srv.client(key) as c:
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
        assert wait_terminal(c, "text-to-video", job_id)["status"] == "failed"
        d = wait_delivery(c, "text-to-video", job_id, "succeeded")
    (hit,) = receiver.for_job(job_id)
    assert signature_ok(secret, hit.headers, hit.body)
    event = json.loads(hit.body)
    assert event["type"] == d["event"] == "job.failed"
    assert event["data"]["error"]["type"] == "content_filtered_error"
    assert hit.path == "/ok"


def test_ssrf_refused_target_is_a_failed_delivery(srv: Server, receiver: Receiver) -> None:
    """localhost is not allowlisted (only 127.0.0.1:<port> is): it resolves to loopback."""
    target = f"http://localhost:{receiver.port}/ok"
    with srv.client() as c:
        job_id = c.post("/v2/text-to-video", json={**T2V, "callback_url": target}).json()["id"]
        assert wait_terminal(c, "text-to-video", job_id)["status"] == "completed"
        d = wait_delivery(c, "text-to-video", job_id, "failed")
        assert len(d["attempts"]) == 1, d  # refused by rule: not retried
        assert d["attempts"][0]["status_code"] is None
        assert "loopback" in d["attempts"][0]["error"], d
        assert c.get("/healthz").status_code == 200
    assert receiver.for_job(job_id) == []


def test_no_callback_no_delivery_and_bad_callbacks_are_400(srv: Server, receiver: Receiver) -> None:
    with srv.client() as c:
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
        wait_terminal(c, "text-to-video", job_id)
        assert deliveries(c, "text-to-video", job_id) == []
        for bad, words in [
            ("ftp://example.com/x", "callback_url"),
            (5, "callback_url must be a string"),
            ("https://10.0.0.1/hook", "IP address hosts are not allowed"),
            ("https://example.com/" + "x" * 2048, "at most 2048"),
        ]:
            r = c.post("/v2/text-to-video", json={**T2V, "callback_url": bad})
            assert_error(r, 400, "invalid_request_error", words)


def test_deliveries_are_visible_to_the_owner_only(srv: Server, receiver: Receiver) -> None:
    other = srv.cli("keys", "create").splitlines()[-1]
    with srv.client() as c:
        job_id = c.post(
            "/v2/text-to-video", json={**T2V, "callback_url": receiver.url("/ok")}
        ).json()["id"]
        wait_delivery(c, "text-to-video", job_id, "succeeded")
        assert_error(c.get(f"/v2/image-to-video/{job_id}/webhooks"), 404, "not_found_error")
        assert_error(c.get(f"/v2/nope/{job_id}/webhooks"), 404, "not_found_error")
    with srv.client(other) as c:
        assert_error(c.get(f"/v2/text-to-video/{job_id}/webhooks"), 404, "not_found_error")
    r = httpx.get(f"{srv.base_url}/v2/text-to-video/{job_id}/webhooks")
    assert_error(r, 401, "authentication_error")


def test_openapi_documents_the_extension(srv: Server) -> None:
    doc = httpx.get(f"{srv.base_url}/openapi.json").json()
    for name in ("TextToVideoRequest", "VideoToVideoHdrRequest", "EditVideoRequest"):
        prop = doc["components"]["schemas"][name]["properties"]["callback_url"]
        assert prop["x-ltxserve-extension"] is True
    op = doc["paths"]["/v2/{endpoint}/{job_id}/webhooks"]["get"]
    assert op["x-ltxserve-extension"] is True
    assert (
        "callback_url" not in openapi()["components"]["schemas"]["TextToVideoRequest"]["properties"]
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
    else:
        for url in pg_database():
            yield {"LTXSERVE_DATABASE_URL": url}


def test_two_api_processes_send_each_event_once(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    """Two API processes on one database both run the delivery loop: the leases keep
    any message from being sent twice (the receiver answers 200 at once)."""
    receiver = Receiver(fail_first=0).start()
    env = {
        **hook_env(receiver),
        **database_env,
        "LTXSERVE_WEBHOOK_CONCURRENCY": "2",
        "LTXSERVE_SECRET": "shared",
    }
    a = Server(tmp_path / "shared", env=env, workers=1).start()
    b = Server(tmp_path / "shared", env=env, workers=0, api_key=a.api_key).start()
    try:
        with a.client() as c:
            ids = [
                c.post("/v2/text-to-video", json={**T2V, "callback_url": receiver.url()}).json()[
                    "id"
                ]
                for _ in range(12)
            ]
            for job_id in ids:
                wait_terminal(c, "text-to-video", job_id)
                wait_delivery(c, "text-to-video", job_id, "succeeded")
        time.sleep(1)
        for job_id in ids:
            assert len(receiver.for_job(job_id)) == 1, job_id
        senders = [a.log().count("webhook msg_"), b.log().count("webhook msg_")]
        assert sum(senders) == len(ids), senders
    finally:
        b.stop()
        a.stop()
        receiver.stop()


def test_a_pending_delivery_survives_a_restart(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    """The receiver fails while the first API process runs; after it stops and a new
    one starts on the same database, the same message (same webhook-id) gets through."""
    receiver = Receiver(fail_first=1000).start()
    env = {**hook_env(receiver), **database_env, "LTXSERVE_SECRET": "shared"}
    a = Server(tmp_path / "d", env=env).start()
    try:
        with a.client() as c:
            job_id = c.post(
                "/v2/text-to-video", json={**T2V, "callback_url": receiver.url("/flaky")}
            ).json()["id"]
            wait_terminal(c, "text-to-video", job_id)
            deadline = time.monotonic() + 60
            while not receiver.for_job(job_id) and time.monotonic() < deadline:
                time.sleep(0.1)
        a.stop()
        refused = receiver.for_job(job_id)
        assert refused and all(h.answered == 500 for h in refused)
        receiver.fail_first = 0
        b = Server(tmp_path / "d", env=env, workers=0, api_key=a.api_key).start()
        try:
            with b.client() as c:
                d = wait_delivery(c, "text-to-video", job_id, "succeeded")
            hits = receiver.for_job(job_id)
            assert hits[-1].answered == 200
            assert {h.headers["webhook-id"] for h in hits} == {d["id"]}
            assert len(d["attempts"]) == len(hits)
        finally:
            b.stop()
    finally:
        receiver.stop()


def test_keys_webhook_sets_clears_and_rotates(srv: Server, receiver: Receiver) -> None:
    """`ltxserve keys webhook` on an existing key: the default applies to jobs submitted
    from then on, --clear removes it, --rotate-secret replaces the secret, and a
    refused URL or an unknown key changes nothing (exit 2 / 1, one line)."""
    key = srv.cli("keys", "create", "--name", "later").splitlines()[-1]
    key_id = next(ln.split("\t")[0] for ln in srv.cli("keys", "list").splitlines() if "later" in ln)
    out = srv.cli("keys", "webhook", key_id, "--webhook-url", receiver.url("/ok"))
    assert f"webhook_url: {receiver.url('/ok')}" in out
    assert f"webhook={receiver.url('/ok')}" in srv.cli("keys", "list")
    with srv.client(key) as c:
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
        wait_terminal(c, "text-to-video", job_id)
        assert wait_delivery(c, "text-to-video", job_id, "succeeded")["url"] == receiver.url("/ok")
    old = secret_of(srv, key_id)
    assert srv.cli("keys", "webhook", key_id, "--rotate-secret").count(old) == 0
    assert secret_of(srv, key_id).startswith("whsec_")
    for args, code, words in [
        (["--webhook-url", "ftp://example.com/"], 2, "--webhook-url is refused"),
        (["--webhook-url", receiver.url(), "--clear"], 2, "not both"),
    ]:
        r = subprocess.run(
            [sys.executable, "-m", "ltxserve.cli", "keys", "webhook", key_id, *args]
            + ["--data-dir", str(srv.data_dir)],
            env=srv.full_env(),
            capture_output=True,
            text=True,
        )
        assert r.returncode == code and words in r.stderr, (r.returncode, r.stderr)
    r = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", "keys", "webhook", "zzzzzz"]
        + ["--data-dir", str(srv.data_dir)],
        env=srv.full_env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "matches no key" in r.stderr, r.stderr
    assert "webhook_url: -" in srv.cli("keys", "webhook", key_id, "--clear")
    with srv.client(key) as c:
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
        wait_terminal(c, "text-to-video", job_id)
        time.sleep(1)
        assert deliveries(c, "text-to-video", job_id) == []
