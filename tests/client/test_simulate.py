"""Client-testing mode (docs/simulate.md) over real HTTP, and the page's worked example run
as written through the bundled SDK."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, Server, assert_error, assert_schema, wait_terminal

DOC = ROOT / "docs" / "simulate.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
T2V = {"prompt": "a lighthouse", "model": "ltx-2-3-fast", "duration": 2, "resolution": "1280x720"}
TYPES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "insufficient_funds_error": 402,
    "not_found_error": 404,
    "request_too_large": 413,
    "content_filtered_error": 422,
    "rate_limit_error": 429,
    "concurrency_limit_error": 429,
    "api_error": 500,
    "service_unavailable": 503,
}


def new_key(server: Server, simulate: str | None) -> str:
    args = ["keys", "create", "--name", "sim"] + (["--simulate", simulate] if simulate else [])
    return server.cli(*args).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def allow_key(server: Server) -> str:
    return new_key(server, "allow")


def client(server: Server, key: str, directive: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    if directive is not None:
        headers["X-Ltxserve-Simulate"] = directive
    return httpx.Client(base_url=server.base_url, timeout=60, headers=headers)


def python_blocks() -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize(
    ("line", "code"), python_blocks(), ids=[f"simulate.md:{line}" for line, _ in python_blocks()]
)
def test_worked_example_runs(
    line: int,
    code: str,
    server: Server,
    allow_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_BASE_URL", server.base_url)
    monkeypatch.setenv("LTXV_API_KEY", allow_key)
    monkeypatch.setenv("LTX_POLL_INTERVAL", "0.1")
    exec(compile(code, f"{DOC}:{line}", "exec"), {"__name__": "__main__"})


def test_the_page_covers_every_case() -> None:
    code = "\n".join(c for _, c in python_blocks())
    for needle in (
        "submit=429",
        "submit=503",
        "submit=500",
        "fail=",
        "processing=",
        "WaitTimeoutError",
        "RateLimitError",
    ):
        assert needle in code, needle


def test_off_unless_the_key_allows_it(server: Server) -> None:
    with client(server, server.api_key, "fail=api_error") as c:
        assert_error(
            c.post("/v2/text-to-video", json=T2V),
            400,
            "invalid_request_error",
            "X-Ltxserve-Simulate: this API key does not allow simulation",
        )
    with client(server, server.api_key) as c:  # and without the header, a plain job
        job = c.post("/v2/text-to-video", json=T2V).json()
        assert wait_terminal(c, "text-to-video", job["id"])["status"] == "completed"
    with client(server, "ltxsk_nope", "submit=429") as c:  # the key comes first
        assert_error(c.post("/v2/text-to-video", json=T2V), 401, "authentication_error")


@pytest.mark.parametrize(
    "directive,status,type_",
    [
        ("submit=429", 429, "rate_limit_error"),
        ("submit=503", 503, "service_unavailable"),
        ("submit=500", 500, "api_error"),
        ("submit=concurrency_limit_error", 429, "concurrency_limit_error"),
    ],
)
def test_submit_refusals(
    server: Server, allow_key: str, directive: str, status: int, type_: str
) -> None:
    with client(server, allow_key, f"{directive}, retry_after=7, message=slow down") as c:
        r = c.post("/v2/text-to-video", json=T2V)
        assert_error(r, status, type_, "slow down")
        assert r.headers["retry-after"] == "7"
        r = c.post("/v1/text-to-video", json=T2V)  # the synchronous form too
        assert_error(r, status, type_)
    with client(server, allow_key, directive) as c:
        r = c.post("/v2/image-to-video", json={})  # before the body is even read
        assert_error(r, status, type_, "(simulated)")
        assert ("retry-after" in r.headers) == (status != 500)


def test_every_documented_error_type_as_a_failed_job(server: Server, allow_key: str) -> None:
    jobs = {}
    for type_ in TYPES:
        with client(server, allow_key, f"fail={type_}") as c:
            r = c.post("/v2/text-to-video", json=T2V)
            assert r.status_code == 202, r.text
            jobs[type_] = r.json()["id"]
    with client(server, allow_key) as c:
        for type_, job_id in jobs.items():
            body = wait_terminal(c, "text-to-video", job_id)
            assert body["status"] == "failed" and body["error"]["type"] == type_, body
            assert body["error"]["message"].endswith("(simulated)")
            assert_schema(body, "V2JobStatusResponse")


def test_a_job_ends_as_a_cancelled_one_for_the_sdks_cancel_handling(
    server: Server, allow_key: str
) -> None:
    """``fail=cancelled_error``: the status object a cancelled job has, and what the SDK
    makes of it (a failed job as data, ``cancelled`` true) without a DELETE racing the
    worker. A submit is never answered with it."""
    from ltxserve.client import Client

    headers = {"X-Ltxserve-Simulate": "fail=cancelled_error"}
    with Client(base_url=server.base_url, api_key=allow_key, default_headers=headers) as sdk:
        job = sdk.text_to_video.submit(**T2V)
        done = sdk.text_to_video.wait(job.id, timeout=60)
    assert done.status == "failed" and done.cancelled, done
    with client(server, allow_key) as c:
        body = wait_terminal(c, "text-to-video", job.id)
    assert body["error"] == {
        "type": "cancelled_error",
        "message": "The job was cancelled (simulated)",
    }
    assert_schema(body, "V2JobStatusResponse")
    with client(server, allow_key, "submit=cancelled_error") as c:
        r = c.post("/v2/text-to-video", json=T2V)
    assert_error(r, 400, "invalid_request_error", "submit must be one of")


def test_v1_answers_a_failed_job_with_its_status(server: Server, allow_key: str) -> None:
    for type_ in ("content_filtered_error", "insufficient_funds_error"):
        with client(server, allow_key, f"fail={type_}, message=nope") as c:
            assert_error(c.post("/v1/text-to-video", json=T2V), TYPES[type_], type_, "nope")


def test_processing_for_a_given_time_then_a_real_result(server: Server, allow_key: str) -> None:
    with client(server, allow_key, "processing=2.5") as c:
        started = time.monotonic()
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
        seen = set()
        progress = []
        while True:
            body = c.get(f"/v2/text-to-video/{job_id}").json()
            seen.add(body["status"])
            if "progress" in body:
                progress.append(body["progress"])
            if body["status"] in ("completed", "failed"):
                break
            time.sleep(0.1)
        assert body["status"] == "completed" and time.monotonic() - started >= 2.5
        assert "processing" in seen and progress == sorted(progress) and progress[0] < 0.5
        video = httpx.get(body["result"]["video_url"], timeout=60)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        assert body["duration"] == 2


def test_processing_then_failure(server: Server, allow_key: str) -> None:
    with client(server, allow_key, "processing=1, fail=service_unavailable") as c:
        started = time.monotonic()
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
        body = wait_terminal(c, "text-to-video", job_id)
        assert body["status"] == "failed" and time.monotonic() - started >= 1
        assert body["error"]["type"] == "service_unavailable"


def test_a_key_with_its_own_directives(server: Server) -> None:
    key = new_key(server, "fail=content_filtered_error")
    listed = server.cli("keys", "list")
    assert "simulate=fail=content_filtered_error" in listed
    with client(server, key) as c:
        job = c.post("/v2/text-to-video", json=T2V).json()
        body = wait_terminal(c, "text-to-video", job["id"])
        assert body["error"]["type"] == "content_filtered_error"
        assert (
            body["error"]["message"] == "Content is filtered due to policy restrictions (simulated)"
        )
    with client(server, key, "off") as c:  # the header turns the key's directives off
        job = c.post("/v2/text-to-video", json=T2V).json()
        assert wait_terminal(c, "text-to-video", job["id"])["status"] == "completed"
    with client(server, key, "submit=503") as c:  # ... or replaces them
        assert_error(c.post("/v2/text-to-video", json=T2V), 503, "service_unavailable")


@pytest.mark.parametrize(
    "directive,message",
    [
        ("fail=teapot_error", "fail must be one of"),
        ("submit=418", "submit must be one of"),
        ("processing=-1", "processing must be a number of seconds from 0 to 3600"),
        ("processing=nan", "processing must be a number of seconds"),
        ("processing=1e9", "processing must be a number of seconds"),
        ("hang=5", "unknown directive 'hang'"),
        ("fail", "expected name=value"),
        ("fail=api_error, fail=api_error", "fail is given twice"),
    ],
)
def test_bad_directives_are_a_400_naming_the_header(
    server: Server, allow_key: str, directive: str, message: str
) -> None:
    with client(server, allow_key, directive) as c:
        assert_error(
            c.post("/v2/text-to-video", json=T2V),
            400,
            "invalid_request_error",
            f"X-Ltxserve-Simulate: {message}",
        )


def test_keys_create_refuses_bad_directives(server: Server) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltxserve.cli",
            "keys",
            "create",
            "--simulate",
            "fail=nope",
            "--data-dir",
            str(server.data_dir),
        ],
        env=server.full_env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "--simulate: fail must be one of" in out.stderr, out
