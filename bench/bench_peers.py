"""ltxserve against Celery (Redis) and procrastinate (PostgreSQL), same no-op job (#13 item 6).

One run, one machine. For each system and 1, 2 and 4 workers:
    throughput  --jobs no-op jobs submitted back to back while the workers run them,
                from one thread, or from C threads at once for each C of --clients
                (many clients, as a server has); jobs/s = jobs / (first submit ->
                last completion as the system records it: ltxserve `completed` in its
                table, Celery's SUCCESS in its Redis result backend, procrastinate
                `succeeded`)
    latency     --latency-jobs jobs submitted one at a time, each once the one before
                has completed (workers idle); submit -> start = from just before the
                submit call to the first line of the job's body (bench/peer_jobs.py
                records it)
    drain       --jobs jobs submitted while no worker runs, then the workers started:
                jobs/s = jobs between the first job's start and the last one's, as
                their bodies record them. The queue and workers alone, without the client's
                submits in the way: what one client thread can submit bounds the
                throughput figure of a system whose submit is an HTTP request
Trials are interleaved: round after round, and within a round each worker count runs
every system in turn (the order rotating), so the load of a shared machine falls on
all of them alike. Throughput is the median over rounds; latency percentiles pool
every round.

The systems, each as deployed by default:
    ltxserve       `serve --workers 0` (the HTTP API, one process) + one
                   `python bench/peer_jobs.py` with N slots (`ltxserve worker
                   --concurrency N`: N real Workers, each claim, lease, heartbeat,
                   runner child over a pipe, finish; NoopEngine), on PostgreSQL with
                   LISTEN/NOTIFY; submits are POST /v2/text-to-video over HTTP,
                   with httpx (the SDK's transport) or, with --http stdlib, http.client
    ltxserve-procs the same with N one-slot worker processes (`--systems` to add it)
    Celery         one `celery worker -c N` (prefork pool), Redis broker and result
                   backend (`redis-server` on a private loopback port); submits are
                   `apply_async` (Redis LPUSH)
    procrastinate  N `procrastinate worker -c 1` processes, PostgreSQL with
                   LISTEN/NOTIFY; submits are `defer()` (one INSERT)

Usage: python bench/bench_peers.py [--jobs 500] [--latency-jobs 100] [--rounds 2]
       [--workers 1,2,4] [--clients 1] [--systems ltxserve,celery,procrastinate]
       [--http httpx|stdlib] [--pg-url ...]
Needs $LTXSERVE_TEST_PG_URL or --pg-url (scripts/pg-start.sh), `redis-server`
(Debian package) and the `bench` extra (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from tests.support import FAST_ENV, Server, free_port  # noqa: E402

T2V = {"prompt": "bench", "model": "ltx-2-3-fast", "duration": 2, "resolution": "1280x720"}
T2V_BYTES = json.dumps(T2V).encode()
PY = sys.executable
SECRET = "bench-peers-shared-secret"


def bench_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    return env


def read_starts(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        job_id, _, t = line.partition(" ")
        out[job_id] = float(t)
    return out


class System:
    name = ""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.record = tmp / "none"

    def start_workers(self, n: int, record: Path) -> None:
        raise NotImplementedError

    def submit(self, job_id: str) -> str:
        raise NotImplementedError

    def completed(self, ids: list[str]) -> int:
        raise NotImplementedError

    def stop_workers(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def close(self) -> None:
        self.stop_workers()

    def spawn(self, cmd: list[str], env: dict[str, str], log: str) -> None:
        out = open(self.tmp / log, "ab")  # noqa: SIM115 - lives as long as the process
        self.procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))


def new_database(admin: Any, base_url: str, label: str) -> tuple[str, str]:
    name = f"bench_peers_{label}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return name, base_url.rsplit("/", 1)[0] + f"/{name}"


def deployed_defaults() -> dict[str, str]:
    """The settings tests.support's FAST_ENV shortens, back at their defaults (the key
    cache, the sweep interval...): the bench measures ltxserve as deployed. Except the
    per-key concurrency limit (default 2): one key submits every job here, and the
    peers have no such limit; it stays off (0), as FAST_ENV has it."""
    from ltxserve.config import Settings

    fields = Settings.model_fields
    out = {}
    for env_name in FAST_ENV.keys() - {"LTXSERVE_MAX_UNFINISHED_PER_KEY"}:
        name = env_name.removeprefix("LTXSERVE_").lower()
        if name in fields and fields[name].default is not None:
            out[env_name] = str(fields[name].default)
    return out


class Ltxserve(System):
    name = "ltxserve"

    def __init__(
        self,
        tmp: Path,
        admin: Any,
        pg_url: str,
        src: str | None = None,
        client: str = "httpx",
        processes: bool = False,
    ) -> None:
        """``src``: another tree's ``src`` directory to run instead of this one's
        (``--baseline-src``: before and after a change in the same interleaved run;
        its N workers are N processes, as trees before worker slots know no other).
        ``client``: the HTTP client that submits (``--http``). ``processes``: N
        one-slot worker processes instead of one process with N slots."""
        super().__init__(tmp)
        self.admin = admin
        self.src = src
        self.processes = processes or bool(src)
        if src:
            self.name = "ltxserve@base"
        elif processes:
            self.name = "ltxserve-procs"
        self.db, self.url = new_database(admin, pg_url, "ltx")
        self.data = tmp / f"ltx-{uuid.uuid4().hex[:6]}"
        env = {
            **deployed_defaults(),
            "LTXSERVE_DATABASE_URL": self.url,
            "LTXSERVE_LOG_LEVEL": "warning",
            "LTXSERVE_SECRET": SECRET,
        }
        if src:
            env["PYTHONPATH"] = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
        self.srv = Server(self.data, workers=0, env=env).start()
        self.headers = {"Authorization": f"Bearer {self.srv.api_key}"}
        self.http = httpx.Client(base_url=self.srv.base_url, headers=self.headers)
        self.stdlib = client == "stdlib"
        self.local = threading.local()  # one keep-alive http.client connection per thread
        self.sql = create_engine(self.url)

    def start_workers(self, n: int, record: Path) -> None:
        env = bench_env(
            LTXSERVE_DATA_DIR=str(self.data),
            LTXSERVE_DATABASE_URL=self.url,
            LTXSERVE_SECRET=SECRET,  # PostgreSQL: every process signs with the same key
            LTXSERVE_LOG_LEVEL="info",  # `ltxserve worker`'s default
            BENCH_RECORD=str(record),
        )
        for key in FAST_ENV.keys() - {"LTXSERVE_LOG_LEVEL"}:
            env.pop(key, None)  # the defaults, as deployed
        if self.src:
            env["PYTHONPATH"] = os.pathsep.join([str(HERE), self.src, env["PYTHONPATH"]])
        # N slots of one worker process (`ltxserve worker --concurrency N`), as Celery's
        # N are one `celery worker -c N`; --ltx-processes: N one-slot processes instead
        shape = [1] * n if self.processes else [n]
        logs = [f"ltx-worker-{uuid.uuid4().hex[:6]}.log" for _ in shape]
        for log, slots in zip(logs, shape, strict=True):
            self.spawn(
                [PY, str(HERE / "peer_jobs.py")],
                {**env, "LTXSERVE_WORKER_CONCURRENCY": str(slots)},
                log,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(
                (self.tmp / log).exists()
                and (self.tmp / log).read_bytes().count(b"ready with engine") >= slots
                for log, slots in zip(logs, shape, strict=True)
            ):
                return
            time.sleep(0.1)
        log_tail = (self.tmp / logs[0]).read_text()[-2000:]
        raise SystemExit(f"ltxserve workers did not start: {log_tail}")

    def submit(self, job_id: str) -> str:
        if self.stdlib:
            return self._submit_stdlib()
        r = self.http.post("/v2/text-to-video", json=T2V)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def _submit_stdlib(self) -> str:
        """The same POST with http.client: a quarter of httpx's client CPU per request
        (bench/README.md), which on a shared 2-core machine the server's processes get."""
        headers = {**self.headers, "Content-Type": "application/json"}
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                host, port = self.srv.base_url.split("//")[1].split(":")
                conn = self.local.conn = http.client.HTTPConnection(host, int(port))
            try:
                conn.request("POST", "/v2/text-to-video", T2V_BYTES, headers)
                r = conn.getresponse()
                body = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                conn.close()  # the server closed an idle keep-alive connection
                self.local.conn = None
                if attempt:
                    raise
        assert r.status == 202, body
        return str(json.loads(body)["id"])

    def completed(self, ids: list[str]) -> int:
        with self.sql.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM jobs WHERE status = 'completed' AND id = ANY(:ids)"),
                    {"ids": ids},
                ).scalar_one()
            )

    def close(self) -> None:
        super().close()
        self.http.close()
        self.srv.stop()
        self.sql.dispose()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{self.db}" WITH (FORCE)'))


class CeleryRedis(System):
    name = "celery"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        url = os.environ["BENCH_REDIS_URL"]
        port = int(url.rsplit(":", 1)[1])
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL,
        )
        import redis

        self.results = redis.Redis.from_url(url + "/1")
        for _ in range(100):
            try:
                self.results.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        import peer_jobs

        self.app = peer_jobs.celery_app
        self.task = peer_jobs.celery_noop

    def start_workers(self, n: int, record: Path) -> None:
        env = bench_env(BENCH_RECORD=str(record))
        self.spawn(
            [PY, "-m", "celery", "-A", "peer_jobs:celery_app", "worker", "-c", str(n)]
            + ["-n", f"bench{uuid.uuid4().hex[:6]}@%h", "--loglevel", "warning"],
            env,
            "celery.log",
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.app.control.ping(timeout=0.5):
                return
        raise SystemExit("celery worker did not start")

    def submit(self, job_id: str) -> str:
        self.task.apply_async((job_id,), task_id=job_id)
        return job_id

    def completed(self, ids: list[str]) -> int:
        n = 0
        for i in range(0, len(ids), 1000):
            vals = self.results.mget([f"celery-task-meta-{x}" for x in ids[i : i + 1000]])
            n += sum(1 for v in vals if v and b'"SUCCESS"' in v)
        return n

    def close(self) -> None:
        super().close()
        self.redis.terminate()
        self.redis.wait(10)


class Procrastinate(System):
    name = "procrastinate"

    def __init__(self, tmp: Path, admin: Any, db: str, url: str) -> None:
        super().__init__(tmp)
        self.admin = admin
        self.db = db
        import peer_jobs

        self.app = peer_jobs.procrastinate_app
        self.task = peer_jobs.procrastinate_noop
        self.app.open()
        self.app.schema_manager.apply_schema()
        self.sql = create_engine(url)

    def start_workers(self, n: int, record: Path) -> None:
        env = bench_env(BENCH_RECORD=str(record))
        for _ in range(n):
            self.spawn(
                [PY, "-m", "procrastinate", "--app=peer_jobs.procrastinate_app", "worker"]
                + ["-c", "1"],
                env,
                "procrastinate.log",
            )
        # ready once a warm-up job per worker has run (no other readiness signal)
        ids = [self.submit(str(uuid.uuid4())) for _ in range(n)]
        wait_done(self, ids, 120)
        time.sleep(1.0)

    def submit(self, job_id: str) -> str:
        self.task.defer(job_id=job_id)
        return job_id

    def completed(self, ids: list[str]) -> int:
        with self.sql.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' "
                        "AND args->>'job_id' = ANY(:ids)"
                    ),
                    {"ids": ids},
                ).scalar_one()
            )

    def close(self) -> None:
        super().close()
        self.app.close()
        self.sql.dispose()


def wait_done(system: System, ids: list[str], timeout: float) -> float:
    """Wall-clock time when the system recorded the last of ``ids`` done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if system.completed(ids) >= len(ids):
            return time.time()
        time.sleep(0.005)
    raise SystemExit(f"{system.name}: jobs not done after {timeout} s")


def submit_many(system: System, jobs: int, clients: int) -> list[str]:
    """``jobs`` submits back to back, from ``clients`` threads at once (each system's
    client is thread-safe: httpx's pool, kombu's producer pool, procrastinate's)."""
    if clients == 1:
        return [system.submit(str(uuid.uuid4())) for _ in range(jobs)]
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda _: system.submit(str(uuid.uuid4())), range(jobs)))


def trial(
    system: System, n: int, clients: int, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    record = tmp / f"{system.name}-{n}-{uuid.uuid4().hex[:6]}.rec"
    system.start_workers(n, record)
    try:
        wait_done(system, [system.submit(str(uuid.uuid4())) for _ in range(2 * n)], 60)  # warm
        time.sleep(0.5)
        t0 = time.time()
        ids = submit_many(system, args.jobs, clients)
        t_sub = time.time()
        t_done = wait_done(system, ids, 600)
        submitted: dict[str, float] = {}
        for _ in range(args.latency_jobs):  # one at a time, each to idle workers
            time.sleep(random.uniform(0.01, 0.03))
            t = time.time()
            job_id = system.submit(str(uuid.uuid4()))
            submitted[job_id] = t
            wait_done(system, [job_id], 60)
        starts = read_starts(record)
        lat = [starts[i] - t for i, t in submitted.items()]
    finally:
        system.stop_workers()
    queued = [system.submit(str(uuid.uuid4())) for _ in range(args.jobs)]
    drained = tmp / f"{system.name}-{n}-{uuid.uuid4().hex[:6]}.drain"
    system.start_workers(n, drained)
    try:
        wait_done(system, queued, 600)
        mine = set(queued)  # not procrastinate's warm-up jobs (Procrastinate.start_workers)
        began = sorted(t for i, t in read_starts(drained).items() if i in mine)
    finally:
        system.stop_workers()
    return {
        "rate": args.jobs / (t_done - t0),
        "submit_rate": args.jobs / (t_sub - t0),
        "drain": (len(began) - 1) / (began[-1] - began[0]),
        "lat": lat,
    }


def pct(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100)[q - 1] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--latency-jobs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument(
        "--clients", default="1", help="submitting threads of the throughput run, e.g. 1,4"
    )
    ap.add_argument("--systems", default="ltxserve,celery,procrastinate")
    ap.add_argument(
        "--http",
        choices=("httpx", "stdlib"),
        default="httpx",
        help="ltxserve's submitting client: httpx (the SDK's transport) or http.client",
    )
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    ap.add_argument(
        "--baseline-src",
        help="also run ltxserve from this src directory (e.g. `git archive main src`) as "
        "system ltxserve@base, interleaved with the others",
    )
    args = ap.parse_args()
    if not args.pg_url:
        raise SystemExit("needs --pg-url or $LTXSERVE_TEST_PG_URL (scripts/pg-start.sh)")
    names = args.systems.split(",")
    if "celery" in names and not shutil.which("redis-server"):
        raise SystemExit("redis-server not found: apt-get install redis-server")
    counts = [int(x) for x in args.workers.split(",")]
    clients = [int(x) for x in args.clients.split(",")]
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    systems: list[System] = []
    # peer_jobs builds its apps at import from these, in this process and in workers
    os.environ["BENCH_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}"
    proc_db, proc_url = new_database(admin, args.pg_url, "proc")
    os.environ["BENCH_PROCRASTINATE_DSN"] = proc_url.replace("+psycopg", "")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        try:
            if args.baseline_src:
                names.insert(0, "ltxserve@base")
            for name in names:
                if name == "ltxserve@base":
                    systems.append(Ltxserve(tmp, admin, args.pg_url, args.baseline_src, args.http))
                elif name in ("ltxserve", "ltxserve-procs"):
                    procs = name == "ltxserve-procs"
                    systems.append(Ltxserve(tmp, admin, args.pg_url, None, args.http, procs))
                elif name == "celery":
                    systems.append(CeleryRedis(tmp))
                elif name == "procrastinate":
                    systems.append(Procrastinate(tmp, admin, proc_db, proc_url))
            res: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
            cells = [(n, c) for n in counts for c in clients]
            for r in range(args.rounds):
                for i, (n, c) in enumerate(cells):
                    k = (r * len(cells) + i) % len(systems)
                    for system in systems[k:] + systems[:k]:  # rotate who goes first
                        one = trial(system, n, c, args, tmp)
                        res.setdefault((system.name, n, c), []).append(one)
                        print(
                            f"  round {r + 1} {system.name:>13} x{n} c{c}: "
                            f"{one['rate']:7.0f} jobs/s "
                            f"(submits {one['submit_rate']:6.0f}/s, drain "
                            f"{one['drain']:5.0f}/s), submit->start p50 "
                            f"{pct(one['lat'], 50):6.1f} ms",
                            flush=True,
                        )
        finally:
            for system in systems:
                system.close()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{proc_db}" WITH (FORCE)'))
            admin.dispose()
    print(
        f"\nno-op job, {args.jobs} jobs per throughput run, {args.latency_jobs} paced jobs per "
        f"latency run, {args.rounds} rounds interleaved, {os.cpu_count()} cores shared"
    )
    print(
        f"{'system':>13} {'workers':>7} {'clients':>7} | {'jobs/s':>7} {'submit/s':>8} "
        f"{'drain/s':>7} | {'start p50 ms':>12} {'p99 ms':>7}"
    )
    for n, c in cells:
        for name in names:
            runs = res[(name, n, c)]
            lat = [x for one in runs for x in one["lat"]]
            print(
                f"{name:>13} {n:>7} {c:>7} | "
                f"{statistics.median(o['rate'] for o in runs):>7.0f} "
                f"{statistics.median(o['submit_rate'] for o in runs):>8.0f} "
                f"{statistics.median(o['drain'] for o in runs):>7.0f} | "
                f"{pct(lat, 50):>12.1f} {pct(lat, 99):>7.1f}"
            )


if __name__ == "__main__":
    main()
