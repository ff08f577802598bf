"""Status-poll throughput and latency against a bare endpoint of the same stack.

Starts one `ltxserve serve` process (API only, no workers) on loopback, fills the
store with 10,000 active jobs, then drives wrk (C load generator, so the client
is not the bottleneck) at 1, 50 and 200 connections against
    GET /v2/text-to-video/{id}   (auth + store lookup + status body), ids rotating
    GET /healthz                 (same app, middleware and server; no work)
and prints polls/s, p50, p99 and the poll/bare ratio. Targets (issue 2): ratio <= 2x
and >= 2,000 polls/s on 2 cores (10,000 jobs polled every 5 s).

Usage: python bench/bench_poll.py [--duration 10] [--jobs 10000] [--pg-url URL]
With --pg-url (e.g. $LTXSERVE_TEST_PG_URL from scripts/pg-start.sh) the store is a
PostgreSQL database the bench creates there and drops after; SQLite otherwise.
Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.store.conftest import pg_database  # noqa: E402
from tests.support import Server  # noqa: E402

LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v2/text-to-video/" .. ids[(n %% #ids) + 1],
                    {["Authorization"] = "Bearer %s"})
end
"""


def parse(out: str) -> tuple[float, float, float]:
    def ms(value: str) -> float:
        num, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return rps, p50, p99


def wrk(
    url: str, conns: int, seconds: int, script: Path | None = None
) -> tuple[float, float, float]:
    cmd = ["wrk", "-t", "1", "-c", str(conns), "-d", f"{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", str(script)]
    return parse(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


@contextmanager
def database(pg_url: str | None) -> Iterator[str | None]:
    """A throwaway PostgreSQL database on pg_url's server, or None for SQLite."""
    if not pg_url:
        yield None
        return
    yield from pg_database(pg_url, label="bench_poll")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--pg-url", help="PostgreSQL server to make the store's database on")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp, database(args.pg_url) as db_url:
        env = {"LTXSERVE_KEY_CACHE_SECONDS": "2"}
        if db_url:  # a shared database wants one URL-signing secret for all processes
            env["LTXSERVE_DATABASE_URL"] = db_url
            env["LTXSERVE_SECRET"] = os.environ["LTXSERVE_SECRET"] = uuid.uuid4().hex
        srv = Server(Path(tmp), workers=0, env=env).start()
        try:
            from ltxserve.config import Settings
            from ltxserve.jobs.store.db import open_store
            from ltxserve.keys import KeyChecker

            store = open_store(Settings(data_dir=Path(tmp), database_url=db_url))
            key_id = KeyChecker(store, 0).check(f"Bearer {srv.api_key}")
            body = {
                "prompt": "bench",
                "model": "ltx-2-3-fast",
                "duration": 2,
                "resolution": "1280x720",
                "fps": 24,
                "generate_audio": True,
                "camera_motion": None,
            }
            ids = [store.create_job(key_id, "text-to-video", body).id for _ in range(args.jobs)]
            ids_file = Path(tmp) / "ids.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            script = Path(tmp) / "poll.lua"
            script.write_text(LUA % (ids_file, srv.api_key))
            r = httpx.get(
                f"{srv.base_url}/v2/text-to-video/{ids[0]}",
                headers={"Authorization": f"Bearer {srv.api_key}"},
            )
            assert r.status_code == 200 and r.json()["status"] == "pending", r.text
            print(
                f"ltxserve status-poll benchmark: {args.jobs} jobs in "
                f"{'PostgreSQL' if db_url else 'SQLite'}, "
                f"{args.duration}s per run, wrk 1 thread, {os.cpu_count()} cores"
            )
            print(
                f"{'conns':>5} | {'poll/s':>8} {'p50 ms':>7} {'p99 ms':>7} | "
                f"{'bare/s':>8} {'p50 ms':>7} {'p99 ms':>7} | {'cost ratio':>10}"
            )
            for conns in (1, 50, 200):
                bare = wrk(f"{srv.base_url}/healthz", conns, args.duration)
                poll = wrk(srv.base_url + "/", conns, args.duration, script)
                print(
                    f"{conns:>5} | {poll[0]:>8.0f} {poll[1]:>7.2f} {poll[2]:>7.2f} | "
                    f"{bare[0]:>8.0f} {bare[1]:>7.2f} {bare[2]:>7.2f} | "
                    f"{bare[0] / poll[0]:>9.2f}x"
                )
                time.sleep(1)
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
