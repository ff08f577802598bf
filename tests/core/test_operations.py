"""Operations (issue #14 item 5), over real HTTP against real processes: /readyz,
Prometheus /metrics across the API and its worker subprocesses, JSON logs with the
request, key and job ids, and the API draining in-flight requests on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.core.media import data_uri, png_bytes
from tests.core.test_submit import T2V
from tests.store.conftest import pg_database
from tests.support import Server, assert_error, free_port, wait_terminal

SIM = "X-Ltxserve-Simulate"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics answer, parsed by the Prometheus client's parser."""
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, (key, sorted(k for k in samples if k[0] == name))
    return samples[key]


def simulate_key(srv: Server) -> str:
    return (
        srv.cli("keys", "create", "--name", "sim", "--simulate", "allow").strip().splitlines()[-1]
    )


def test_metrics_sum_the_api_and_its_workers(make_server: Callable[..., Server]) -> None:
    """Jobs by state and endpoint come from the database; job duration and queue wait
    from the worker subprocess (the API process never runs a job, so only the shared
    multiprocess files can bring them here), and they survive the worker's SIGKILL;
    HTTP latency is labelled by route template, never by a job id."""
    srv = make_server(env={"LTXSERVE_METRICS_CACHE_SECONDS": "0"})
    sim = simulate_key(srv)
    image = {**T2V, "image_uri": data_uri("image/png", png_bytes())}
    ids: list[tuple[str, str]] = []
    with srv.client() as c, srv.client(sim) as s:
        for endpoint, body in [("text-to-video", T2V)] * 3 + [("image-to-video", image)] * 2:
            r = c.post(f"/v2/{endpoint}", json=body)
            assert r.status_code == 202, r.text
            ids.append((endpoint, r.json()["id"]))
        r = s.post("/v2/text-to-video", json=T2V, headers={SIM: "fail=content_filtered_error"})
        assert r.status_code == 202, r.text
        ids.append(("text-to-video", r.json()["id"]))
        for endpoint, job_id in ids:
            wait_terminal(s if job_id == ids[-1][1] else c, endpoint, job_id)

    m = scrape(srv.base_url)
    jobs = "ltxserve_jobs"
    assert value(m, jobs, state="completed", endpoint="text-to-video") == 3
    assert value(m, jobs, state="failed", endpoint="text-to-video") == 1
    assert value(m, jobs, state="completed", endpoint="image-to-video") == 2
    assert value(m, jobs, state="pending", endpoint="extend") == 0
    assert value(m, "ltxserve_queue_depth") == 0
    assert value(m, "ltxserve_database_up") == 1

    def worker_counts(m: Samples) -> tuple[float, ...]:
        t2v = {"endpoint": "text-to-video", "engine": srv.engine}
        i2v = {"endpoint": "image-to-video", "engine": srv.engine}
        return (
            value(m, "ltxserve_job_duration_seconds_count", **t2v),
            value(m, "ltxserve_job_duration_seconds_count", **i2v),
            value(m, "ltxserve_job_queue_wait_seconds_count", **t2v),
            value(m, "ltxserve_jobs_finished_total", status="completed", **t2v),
            value(m, "ltxserve_jobs_finished_total", status="failed", **t2v),
        )

    assert worker_counts(m) == (4, 2, 4, 3, 1)
    assert (
        value(m, "ltxserve_job_duration_seconds_sum", endpoint="text-to-video", engine=srv.engine)
        > 0
    )
    for outcome in ("delivered", "failed"):  # declared at zero until webhooks land
        assert value(m, "ltxserve_webhook_deliveries_total", outcome=outcome) == 0

    http = "ltxserve_http_request_duration_seconds_count"
    assert value(m, http, method="POST", route="/v2/text-to-video", code="202") == 4
    assert value(m, http, method="POST", route="/v2/image-to-video", code="202") == 2
    assert value(m, http, method="GET", route="/v2/{endpoint}/{job_id}", code="200") >= 6
    labels = " ".join(v for (_, ls) in m for _, v in ls)
    assert not any(job_id in labels for _, job_id in ids)  # bounded: templates only

    # A worker SIGKILLed (and restarted by serve) keeps its observations in the sum.
    (pid,) = srv.worker_pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while srv.worker_pids() in ([], [pid]):
        assert time.monotonic() < deadline, "the worker was not restarted"
        time.sleep(0.2)
    assert worker_counts(scrape(srv.base_url)) == (4, 2, 4, 3, 1)


def test_a_worker_of_its_own_machine_serves_its_metrics(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """`ltxserve worker --metrics-port`: a worker whose data dir (so metrics directory)
    is its own, as on another machine, reports its jobs on its own port; the API
    reports the job counts from the database but not that worker's histograms."""
    secret = {"LTXSERVE_SECRET": "shared-test-secret", "LTXSERVE_METRICS_CACHE_SECONDS": "0"}
    srv = make_server(env=secret, workers=0)
    own = tmp_path / "elsewhere"
    own.mkdir()
    (own / "blobs").symlink_to(srv.data_dir / "blobs", target_is_directory=True)
    port = free_port()
    env = {
        **srv.full_env(),
        "LTXSERVE_DATA_DIR": str(own),
        "LTXSERVE_DATABASE_URL": f"sqlite:///{srv.data_dir / 'ltxserve.db'}",
    }
    with (own / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ltxserve.cli", "worker", "--engine", srv.engine]
            + ["--metrics-port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with srv.client() as c:
            r = c.post("/v2/text-to-video", json=T2V)
            assert r.status_code == 202, r.text
            assert wait_terminal(c, "text-to-video", r.json()["id"])["status"] == "completed"
        labels = {"endpoint": "text-to-video", "engine": srv.engine}
        mine = scrape(f"http://127.0.0.1:{port}")
        assert value(mine, "ltxserve_job_duration_seconds_count", **labels) == 1
        api = scrape(srv.base_url)
        assert value(api, "ltxserve_jobs", state="completed", endpoint="text-to-video") == 1
        key = ("ltxserve_job_duration_seconds_count", tuple(sorted(labels.items())))
        assert key not in api
    finally:
        worker.terminate()
        worker.wait(30)


def test_readyz_follows_the_blob_store(make_server: Callable[..., Server]) -> None:
    srv = make_server(workers=0)
    assert httpx.get(f"{srv.base_url}/readyz").json()["status"] == "ready"
    blobs = srv.data_dir / "blobs"
    blobs.rename(srv.data_dir / "blobs-away")
    try:
        r = httpx.get(f"{srv.base_url}/readyz")
        assert_error(r, 503, "service_unavailable", "storage unreachable")
        assert "database" not in r.json()["error"]["message"]
        assert httpx.get(f"{srv.base_url}/healthz").status_code == 200  # alive, not ready
    finally:
        (srv.data_dir / "blobs-away").rename(blobs)
    assert httpx.get(f"{srv.base_url}/readyz").status_code == 200


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database()


def test_readyz_follows_the_database(make_server: Callable[..., Server], pg_url: str) -> None:
    """PostgreSQL refusing this database's connections: not ready; allowed again: ready."""
    env = {"LTXSERVE_DATABASE_URL": pg_url, "LTXSERVE_SECRET": "shared-test-secret"}
    srv = make_server(env=env, workers=0)
    assert httpx.get(f"{srv.base_url}/readyz").status_code == 200
    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
        r = httpx.get(f"{srv.base_url}/readyz", timeout=30)
        assert_error(r, 503, "service_unavailable", "database unreachable")
        assert "storage" not in r.json()["error"]["message"]
        assert value(scrape(srv.base_url), "ltxserve_database_up") == 0
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
    deadline = time.monotonic() + 20
    while httpx.get(f"{srv.base_url}/readyz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the database came back"
        time.sleep(0.2)


def test_json_logs_carry_request_key_and_job_ids(make_server: Callable[..., Server]) -> None:
    srv = make_server(env={"LTXSERVE_LOG_FORMAT": "json"})
    (key_id,) = [
        ln.split("\t")[0] for ln in srv.cli("keys", "list").splitlines() if "\ttests\t" in ln
    ]
    rid = "trace-4f1c9e2a-test"
    with srv.client() as c:
        r = c.post("/v2/text-to-video", json=T2V, headers={"X-Request-Id": rid})
        assert r.status_code == 202, r.text
        assert r.headers["x-request-id"] == rid  # the client's id, echoed
        job_id = r.json()["id"]
        assert wait_terminal(c, "text-to-video", job_id)["status"] == "completed"
        forged = c.get("/healthz", headers={"X-Request-Id": "has spaces {}" + "x" * 200})
        assert len(forged.headers["x-request-id"]) == 32  # not taken: a fresh one
    time.sleep(0.5)  # the worker's last lines
    records = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
        else:  # only serve's banner is not a log record
            assert line.startswith(("ltxserve ", "engine: ", "API key")), line
    api = [r for r in records if r.get("request_id") == rid]
    assert any(
        r["logger"] == "ltxserve.api" and r.get("key_id") == key_id and r.get("job_id") == job_id
        for r in api
    ), api
    worker = [r for r in records if r["logger"] == "ltxserve.worker" and r.get("job_id") == job_id]
    assert worker and all(r.get("key_id") == key_id for r in worker), records
    assert {r["level"] for r in records} <= {"debug", "info", "warning", "error", "critical"}


def test_text_logs_name_the_ids(make_server: Callable[..., Server]) -> None:
    srv = make_server()
    with srv.client() as c:
        r = c.post("/v2/text-to-video", json=T2V, headers={"X-Request-Id": "rid-text-1"})
        job_id = r.json()["id"]
        wait_terminal(c, "text-to-video", job_id)
    time.sleep(0.5)
    assert "submitted [request_id=rid-text-1 key_id=" in srv.log()
    assert f"job_id={job_id}]" in srv.log()


def test_sigterm_lets_an_in_flight_request_finish(make_server: Callable[..., Server]) -> None:
    """SIGTERM to `serve` alone (as `docker stop` sends it): uvicorn stops accepting and
    drains; a synchronous /v1 request whose job takes 3 s more still gets its video."""
    srv = make_server()
    sim = simulate_key(srv)
    answer: dict[str, Any] = {}

    def call() -> None:
        with srv.client(sim) as c:
            answer["r"] = c.post(
                "/v1/text-to-video", json=T2V, headers={SIM: "processing=3"}, timeout=60
            )
            answer["at"] = time.monotonic()

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 30
    while "claimed" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    assert srv.proc is not None
    signalled = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):  # draining: no new connections
        httpx.get(f"{srv.base_url}/healthz", timeout=2)
    thread.join(60)
    r = answer["r"]
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4" and len(r.content) > 1000
    assert answer["at"] - signalled > 1.5  # it really was in flight when the signal came
    srv.proc.wait(30)
    assert "Waiting for connections to close" in srv.log() or "shutdown" in srv.log().lower()


def test_an_unknown_log_format_stops_serve_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "LTXSERVE_DATA_DIR": str(tmp_path), "LTXSERVE_LOG_FORMAT": "xml"}
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 78, (out.stdout, out.stderr)
    assert "LTXSERVE_LOG_FORMAT" in out.stderr and "text or json" in out.stderr
