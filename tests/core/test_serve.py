"""`serve` and `worker` as processes: configuration errors, signals, restart backoff."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ltxserve.config import EX_CONFIG
from ltxserve.supervisor import Supervisor
from tests.core.test_lifecycle import LONG, runner_pids, wait_status
from tests.support import FAST_ENV, Server, free_port


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LTXSERVE_LTX_MODELS_FILE"}
    return {**env, **FAST_ENV, "LTXSERVE_DATA_DIR": str(data_dir)}


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "0", "--workers", "2"],
        ["worker"],
    ],
)
def test_ltx_without_a_registry_stops_at_once_with_one_line(
    command: list[str], tmp_path: Path
) -> None:
    """Not a worker restarted every 2 s with a traceback each time: one line, exit 78."""
    port = str(free_port())
    args = [a if a != "0" else port for a in command]
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", *args, "--engine", "ltx"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == EX_CONFIG, (out.stdout, out.stderr)
    assert time.monotonic() - started < 30
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "LTXSERVE_LTX_MODELS_FILE" in lines[0] and "docs/model-engine.md" in lines[0]
    assert "Traceback" not in out.stdout + out.stderr


def test_a_bad_setting_names_itself(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "LTXSERVE_WORKERS": "many"}
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == EX_CONFIG
    assert out.stderr.count("\n") == 1 and "LTXSERVE_WORKERS" in out.stderr


def test_a_worker_that_keeps_dying_is_restarted_with_backoff_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ltxserve.supervisor")
    sup = Supervisor(
        1,
        tmp_path,
        "minimal",
        restart_delay=0.2,
        max_restart_delay=1.0,
        command=[sys.executable, "-c", "raise SystemExit(3)"],
    )
    sup.start()
    time.sleep(5)
    sup.stop()
    sup.join(5)
    spawns = [r for r in caplog.records if r.getMessage().startswith("started worker")]
    backoff = [r for r in caplog.records if "backoff" in r.getMessage()]
    # Without backoff: one start every 0.2-0.5 s (10-25). With it: 0.2, 0.4, 0.8, 1, 1, ...
    assert 3 <= len(spawns) <= 9, len(spawns)
    assert len(backoff) == 1, [r.getMessage() for r in caplog.records]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 2  # the first exit, then the one backoff notice


def test_a_worker_with_a_configuration_error_stops_the_supervisor(tmp_path: Path) -> None:
    stopped: list[float] = []
    sup = Supervisor(
        2,
        tmp_path,
        "minimal",
        restart_delay=0.1,
        command=[sys.executable, "-c", f"raise SystemExit({EX_CONFIG})"],
        on_fatal=lambda: stopped.append(time.monotonic()),
    )
    sup.start()
    sup.join(20)
    assert not sup.is_alive() and sup.fatal and len(stopped) == 1
    assert sup.pids() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serve_stops_its_busy_workers(
    sig: int, make_server: Callable[..., Server]
) -> None:
    """uvicorn re-raises the signal after its shutdown; serve must have stopped its
    workers (and their runners) by the time it exits, not leave them orphaned."""
    srv = make_server(workers=2)
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=LONG).json()
        wait_status(c, "text-to-video", job["id"], "processing")
    workers = srv.worker_pids()
    runners = [r for w in workers for r in runner_pids(w)]
    assert len(workers) == 2 and runners
    assert srv.proc is not None
    os.kill(srv.proc.pid, sig)  # serve alone, as a service manager or a shell would
    srv.proc.wait(40)
    left = [p for p in workers if os.path.exists(f"/proc/{p}")]
    assert not left, f"workers outlived serve: {left}"
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in runners) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in runners)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_serve_stops_when_a_worker_meets_a_configuration_error(tmp_path: Path) -> None:
    """What serve's own check cannot see, its worker's can: serve then stops (78)
    instead of restarting the worker forever. (serve's check is bypassed here.)"""
    port = free_port()
    code = (
        "import sys, ltxserve.engines as e; e.check_engine = lambda name, _settings: name; "
        "from ltxserve.cli import main; sys.argv = ['ltxserve', 'serve', '--engine', "
        f"'ltx', '--port', '{port}', '--workers', '2']; main()"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=90
    )
    assert out.returncode == EX_CONFIG, (out.stdout, out.stderr)
    assert time.monotonic() - started < 60
    assert "LTXSERVE_LTX_MODELS_FILE" in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.count("restarting") == 0
