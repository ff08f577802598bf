"""Cancel latency: from ``DELETE /v2/{endpoint}/{id}`` of a running job to its worker
taking the next job, on the preview engine and on the ltx engine (the tiny random
LTX-2 of tests/engines/tiny_ltx.py on CPU, 2000 denoising steps so it is mid-run).

For each engine: one ``ltxserve serve`` (1 worker) on loopback, then ``--trials``
times: submit a long job, wait until it reports progress, queue a short one behind
it, DELETE the long one and poll the short one every 10 ms. Printed per engine
(median and max over the trials):
    answer   the DELETE's own round trip
    notice   DELETE -> the worker's "lease lost ... (cancelled)" log line
    stop     that line -> the runner's "stopped in the runner" (Stop seen at the
             engine's next progress report, the job unwound)
    free     DELETE -> the queued job seen processing (the worker took it)
The runner's pid is checked unchanged after every trial (no restart, no reload).

Usage: python bench/bench_cancel.py [--trials 5] [--engines preview,ltx]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.core.test_cancel import wait_progress  # noqa: E402
from tests.core.test_lifecycle import LONG, runner_pids  # noqa: E402
from tests.core.test_submit import T2V  # noqa: E402
from tests.support import Server  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?job (\S+?):? (.*)$")


def log_time(log: str, job_id: str, text: str) -> float | None:
    """Epoch seconds of the first log line about ``job_id`` containing ``text``."""
    for line in log.splitlines():
        m = STAMP.match(line)
        if m and m.group(2) == job_id and text in m.group(3):
            return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def trial(srv: Server, long_body: dict[str, Any]) -> dict[str, float]:
    with srv.client() as c:
        running = c.post("/v2/text-to-video", json=long_body).json()["id"]
        wait_progress(c, "text-to-video", running)
        queued = c.post("/v2/text-to-video", json=T2V).json()["id"]
        t0, wall = time.monotonic(), time.time()
        r = c.delete(f"/v2/text-to-video/{running}")
        answer = time.monotonic() - t0
        assert r.status_code == 200 and r.json()["error"]["type"] == "cancelled_error", r.text
        while c.get(f"/v2/text-to-video/{queued}").json()["status"] == "pending":
            if time.monotonic() - t0 > 120:
                raise RuntimeError("the worker never took the next job")
            time.sleep(0.01)
        free = time.monotonic() - t0
        while c.get(f"/v2/text-to-video/{queued}").json()["status"] not in ("completed", "failed"):
            time.sleep(0.05)
    log = srv.log()
    noticed = log_time(log, running, "lease lost; abandoning it (cancelled)")
    stopped = log_time(log, running, "stopped in the runner")
    assert noticed is not None and stopped is not None, log[-2000:]
    return {"answer": answer, "notice": noticed - wall, "stop": stopped - noticed, "free": free}


def run_engine(engine: str, trials: int, root: Path) -> list[dict[str, float]]:
    env: dict[str, str] = {}
    long_body: dict[str, Any] = dict(LONG)
    if engine == "ltx":
        from tests.engines.test_ltx import write_registry
        from tests.engines.tiny_ltx import build_tiny_ltx

        weights = build_tiny_ltx(root / "tiny-ltx")
        registry = write_registry(
            root / "models.json",
            weights,
            **{"ltx-2-3-pro": {"steps": 2000}, "ltx-2-3-fast": {"steps": 2}},
        )
        env["LTXSERVE_LTX_MODELS_FILE"] = str(registry)
        long_body = {**LONG, "duration": 2, "resolution": "1280x720", "generate_audio": False}
    srv = Server(root / f"srv-{engine}", engine=engine, env=env).start()
    try:
        deadline = time.monotonic() + 120
        while "ready with engine" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        (worker,) = srv.worker_pids()
        runners = runner_pids(worker)
        results = []
        for _ in range(trials):
            results.append(trial(srv, long_body))
            assert runner_pids(worker) == runners, "the runner was restarted"
        return results
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--engines", default="preview,ltx")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            rows = run_engine(engine, args.trials, Path(tmp))
            parts = []
            for key in ("answer", "notice", "stop", "free"):
                values = [r[key] for r in rows]
                parts.append(f"{key} {statistics.median(values):.3f}/{max(values):.3f}")
            print(f"{engine:8s} ({len(rows)} trials, median/max s): " + ", ".join(parts))


if __name__ == "__main__":
    main()
