"""Test support: the real server as a subprocess on a loopback port; contract checks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "tests" / "contract"
SHARED = ROOT.parent / "shared" / "ltx-api"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAST_ENV = {
    "LTXSERVE_POLL_INTERVAL": "0.1",
    "LTXSERVE_HEARTBEAT_SECONDS": "0.5",
    "LTXSERVE_LEASE_SECONDS": "5",
    "LTXSERVE_SWEEP_INTERVAL": "1",
    "LTXSERVE_KEY_CACHE_SECONDS": "0",
    "LTXSERVE_LOG_LEVEL": "info",  # server logs are the tests' diagnosis (default: warning)
    # Tests and benches submit many jobs with one key: the per-key concurrency limit
    # (default 2, docs/limits.md) is off here. Tests of the limits set it in `env`, and
    # tests/store/test_limits_http.py proves the real default with the variable unset.
    "LTXSERVE_MAX_UNFINISHED_PER_KEY": "0",
}


@dataclass
class Server:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    engine: str = "minimal"
    proc: subprocess.Popen[bytes] | None = None
    api_key: str = ""
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def full_env(self) -> dict[str, str]:
        env = {**os.environ, **FAST_ENV, **self.env}
        env["LTXSERVE_DATA_DIR"] = str(self.data_dir)
        return env

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "ltxserve.cli", *args, "--data-dir", str(self.data_dir)],
            env=self.full_env(),
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def start(self, timeout: float = 60) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ltxserve.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
                "--engine",
                self.engine,
            ],
            env=self.full_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start: {self.log()}")
        if not self.api_key:
            self.api_key = self.cli("keys", "create", "--name", "tests").strip().splitlines()[-1]
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def worker_pids(self) -> list[int]:
        """Pids of `ltxserve worker` children of this server."""
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid), "-f", "ltxserve.cli worker"],
            capture_output=True,
            text=True,
        )
        return [int(p) for p in out.stdout.split()]

    def spawn_worker(
        self, data_dir: Path | None = None, *args: str
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """An `ltxserve worker` of this server's store as the test's own child (no
        supervisor restarts it; its exit status is the test's to read), logging to the
        returned file. ``data_dir`` defaults to the server's; ``args`` go to the
        command line. The caller stops it."""
        data_dir = data_dir or self.data_dir
        log_path = data_dir / f"worker-{len(list(data_dir.glob('worker-*.log')))}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ltxserve.cli", "worker", "--data-dir", str(data_dir)]
                + ["--engine", self.engine, *args],
                env={**self.full_env(), "LTXSERVE_DATA_DIR": str(data_dir)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return proc, log_path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {key or self.api_key}"},
        )


@cache
def openapi() -> dict[str, Any]:
    return json.loads((CONTRACT / "openapi.json").read_text())


def schema(name: str) -> dict[str, Any]:
    spec = openapi()
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


def assert_schema(instance: Any, name: str) -> None:
    """Validate a JSON body against one of the contract's component schemas."""
    jsonschema.validate(
        instance,
        schema(name),
        cls=jsonschema.Draft202012Validator,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def assert_error(resp: httpx.Response, status: int, type_: str, contains: str = "") -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert_schema(body, "Error")
    assert body["error"]["type"] == type_, body
    assert contains.lower() in body["error"]["message"].lower(), body
    assert len(resp.headers["x-request-id"]) == 32


def wait_terminal(
    client: httpx.Client, endpoint: str, job_id: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v2/{endpoint}/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert_schema(body, "V2JobStatusResponse")
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not terminal after {timeout}s")
