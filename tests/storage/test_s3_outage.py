"""S3 goes away while jobs finish: a short outage is retried through, and a job whose
result cannot be stored ends ``failed`` with api_error, never ``completed`` with a URL
that serves nothing (issue #13, item 4's storage part).

The outage is a TCP gate (tests/storage/gate.py) in front of the shared SeaweedFS, so
only this test's server loses its S3.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.storage.conftest import S3_URL, keys_under, s3_env
from tests.storage.gate import Gate
from tests.support import Server, wait_terminal

T2V = {"prompt": "a harbour", "model": "ltx-2-3-fast", "duration": 2, "resolution": "1280x720"}


@pytest.fixture
def gate(bucket: str) -> Iterator[Gate]:
    target = urlsplit(S3_URL)
    g = Gate((target.hostname or "127.0.0.1", target.port or 80))
    g.open()
    yield g
    g.close()


def submit_and_wait_processing(c: httpx.Client) -> str:
    r = c.post("/v2/text-to-video", json=T2V)
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    deadline = time.monotonic() + 60
    while c.get(f"/v2/text-to-video/{job_id}").json()["status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return job_id


def test_results_survive_a_short_outage_and_a_long_one_fails_the_job(
    make_server: Callable[..., Server], bucket: str, gate: Gate
) -> None:
    env = {**s3_env(bucket, "outage", endpoint=gate.url), "LTXSERVE_STORAGE_RETRY_SECONDS": "8"}
    srv = make_server(env=env, workers=1)
    key = srv.cli("keys", "create", "--name", "slow", "--simulate", "processing=2")
    with srv.client(key.strip().splitlines()[-1]) as c:
        # S3 is down when the engine finishes, and back 5 s later: the upload is retried
        short = submit_and_wait_processing(c)
        gate.close()
        time.sleep(5)
        gate.open()
        done = wait_terminal(c, "text-to-video", short)
        assert done["status"] == "completed", (done, srv.log())
        assert httpx.get(done["result"]["video_url"]).status_code == 200
        # S3 stays down past LTXSERVE_STORAGE_RETRY_SECONDS: the job fails, and says why
        long = submit_and_wait_processing(c)
        gate.close()
        started = time.monotonic()
        done = wait_terminal(c, "text-to-video", long, timeout=180)
        gate.open()
        assert done["status"] == "failed", (done, srv.log())
        assert done["error"]["type"] == "api_error", done
        assert "could not be stored" in done["error"]["message"], done
        assert time.monotonic() - started >= 8  # it was retried, not failed at once
    assert "retrying" in srv.log()
    assert not [k for k in keys_under(bucket, "outage/") if long in k]
