"""Stop the S3 server for 30 s while jobs finish.

An API process and two workers on PostgreSQL store their results in an S3 server of
the test's own (a private ``weed mini``, stopped and started for real; never the shared
one). Jobs of ~0.5 s keep finishing while the server is away for 30 s; each worker
retries an upload for ``LTXSERVE_STORAGE_RETRY_SECONDS`` (12 s here). What must hold:

- uploads are retried: a job that finished while S3 was down and whose retries
  outlived the outage is ``completed``, with a result URL that serves its video;
- a job whose retries ran out fails with ``api_error`` ("could not be stored") and
  leaves no object: never ``completed`` with a URL that serves nothing;
- the workers ride the outage out (none exits or is restarted).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.faults.cluster import SLOW, Cluster, private_s3, submit_many

pytestmark = SLOW

OUTAGE = 30.0
RETRY_SECONDS = 12.0
JOBS = 30


def test_s3_stopped_for_30s_while_jobs_finish(
    pg_url: str, cluster: Callable[[str], Cluster], report: Callable[[str], None], tmp_path: Path
) -> None:
    started = time.monotonic()
    with private_s3(tmp_path / "s3") as s3:
        c = cluster(pg_url)
        c.env.update(s3.env("run"))
        c.env["LTXSERVE_STORAGE_RETRY_SECONDS"] = str(RETRY_SECONDS)
        api = c.start_api()
        workers = [c.start_worker(), c.start_worker()]
        c.wait_ready(workers)
        pids = [w.proc.pid if w.proc else 0 for w in workers]
        slow = api.cli("keys", "create", "--name", "slow", "--simulate", "processing=0.5")
        key = slow.strip().splitlines()[-1]

        ids = submit_many([api.base_url], key, JOBS, threads=4)
        time.sleep(1.5)  # a few done before the outage, the rest finish during or after it
        before = Counter(c.statuses(ids).values())
        s3.stop()
        down_at = time.monotonic()
        time.sleep(OUTAGE)
        s3.start()
        down_for = time.monotonic() - down_at
        final = c.wait_all_terminal(ids, timeout=120)
        alive = [w.proc.pid if w.alive() and w.proc else 0 for w in workers]
        logs = "\n".join(w.log() for w in workers)

        rows = {r.id: r for r in c.jobs()}
        completed = [i for i in ids if final[i] == "completed"]
        failed = [i for i in ids if final[i] == "failed"]
        # every completed job's URL serves its video, straight from the bucket
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as http:
            for job_id in completed:
                body = http.get(f"{api.base_url}/v2/text-to-video/{job_id}").json()
                r = http.get(body["result"]["video_url"])
                assert r.status_code == 200 and r.content[4:8] == b"ftyp", (job_id, r.status_code)
        stored = s3.keys("run/")

    assert alive == pids, ("a worker died during the outage", logs[-4000:])
    assert len(c.workers) == 2
    for job_id in failed:  # ... and a job that could not store its result says so
        assert rows[job_id].error_type == "api_error", rows[job_id]
        assert "could not be stored" in rows[job_id].error_message, rows[job_id]
        assert not [k for k in stored if job_id in k], job_id  # no object left behind
    retried = set(re.findall(r"blob store: upload jobs/([\w-]+)/\S+ failed", logs))
    retried_completed = sorted(retried & set(completed))
    assert failed, "the outage outlasted the retries, so some job must have failed"
    assert retried_completed, "some upload must have been retried through to completion"
    report(
        f"outage={down_for:.0f}s retry_window={RETRY_SECONDS:.0f}s jobs={JOBS} "
        f"before_outage={dict(before)} completed={len(completed)} "
        f"completed_after_retrying={len(retried_completed)} failed_api_error={len(failed)} "
        f"dead_urls=0 orphan_objects=0 workers_restarted=0 "
        f"wall={time.monotonic() - started:.1f}s"
    )
