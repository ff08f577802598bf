"""Webhook delivery throughput: deliveries/s from the delivery loop to a loopback receiver.

Fills a fresh store with N completed jobs that asked for a webhook (each ended
through the manager, so its delivery row is the one ``SqlJobStore._finish``
enqueues), then runs the API process's delivery loop (webhooks/dispatcher.py:
claim with a lease, render the status object, sign, POST through the SSRF guard,
record the attempt) until every one is delivered, and prints deliveries/s for
each concurrency. The receiver is another
process (a threading HTTP server answering 200), so it does not share the loop's
GIL. SQLite by default; --database-url runs it on PostgreSQL (a database of its
own is created and dropped).

Usage: python bench/bench_webhooks.py [--deliveries 1000] [--concurrency 1,8,32]
       [--database-url postgresql+psycopg://postgres@127.0.0.1:54329/postgres]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import free_port  # noqa: E402

from ltxserve.config import Settings  # noqa: E402
from ltxserve.jobs.lifecycle.manager import JobManager, open_manager  # noqa: E402
from ltxserve.jobs.store.base import WEBHOOK_NOTE  # noqa: E402
from ltxserve.keys import create_key  # noqa: E402
from ltxserve.webhooks.dispatcher import Dispatcher  # noqa: E402

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        self.do_POST()
    def log_message(self, *a):
        pass
ThreadingHTTPServer.request_queue_size = 512
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def fill(settings: Settings, n: int, url: str) -> JobManager:
    """N completed jobs, each with its pending delivery (as the finishing transaction left it)."""
    manager = open_manager(settings)
    create_key(manager.store, "bench")
    (key,) = manager.store.list_keys()
    note = {WEBHOOK_NOTE: {"url": url, "base_url": "https://ltx.example.com"}}
    for i in range(n):
        manager.store.create_job(key["id"], "text-to-video", {"prompt": f"p{i}", **note})
        job = manager.claim("bench")
        assert job is not None
        result = {"video_url": {"key": f"jobs/{job.id}/video.mp4", "content_type": "video/mp4"}}
        assert manager.complete(job, "bench", result)
    return manager


def pending(manager: JobManager) -> int:
    with manager.store.read() as conn:  # type: ignore[attr-defined]
        return int(
            conn.execute(
                text("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")
            ).scalar_one()
        )


def run(settings: Settings, n: int, url: str) -> float:
    t0 = time.perf_counter()
    manager = fill(settings, n, url)
    print(f"    (filled {n} jobs in {time.perf_counter() - t0:.1f} s)", flush=True)
    assert pending(manager) == n
    loop = Dispatcher(manager, settings)
    t0 = time.perf_counter()
    loop.start()
    while pending(manager):
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    loop.stop()
    loop.join(5)
    with manager.store.read() as conn:  # type: ignore[attr-defined]
        states = conn.execute(
            text("SELECT state, count(*) FROM webhook_deliveries GROUP BY state")
        ).all()
    assert dict(states) == {"succeeded": n}, states  # type: ignore[comparison-overlap]
    manager.store.engine.dispose()  # type: ignore[attr-defined]
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/hook"
        print(
            f"{args.deliveries} deliveries to a loopback receiver, {args.database_url or 'SQLite'}"
        )
        for c in (int(x) for x in args.concurrency.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                db_url = args.database_url
                dbname = None
                if db_url:
                    dbname = f"bench_hooks_{uuid.uuid4().hex[:8]}"
                    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
                    with admin.connect() as conn:
                        conn.execute(text(f"CREATE DATABASE {dbname}"))
                    db_url = db_url.rsplit("/", 1)[0] + "/" + dbname
                settings = Settings(
                    data_dir=Path(tmp),
                    database_url=db_url,
                    allow_http=True,
                    fetch_allow_hosts=[f"127.0.0.1:{port}"],
                    webhook_concurrency=c,
                    webhook_poll_interval=0.05,
                )
                try:
                    rate = run(settings, args.deliveries, url)
                finally:
                    if dbname:
                        with admin.connect() as conn:
                            conn.execute(text(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
                        admin.dispose()
                print(f"  concurrency {c:3d}: {rate:8.1f} deliveries/s")
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
