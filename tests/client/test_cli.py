"""The ``ltx`` CLI against the real server: typer's CliRunner, plus one real subprocess.

stdout and stderr are checked apart, because the CLI promises that stdout holds only
the result (a path, an id, or one JSON object).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ltxserve.client.cli import app
from tests.client.conftest import SMALL
from tests.client.proxy import FaultProxy
from tests.support import Server

T2V = [
    "text-to-video",
    "--prompt",
    SMALL["prompt"],
    "--model",
    SMALL["model"],
    "--duration",
    str(SMALL["duration"]),
    "--resolution",
    SMALL["resolution"],
]


def ltx(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def as_json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_text_to_video_json(ltx_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "fox.mp4"
    result = ltx(*T2V, "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = as_json(result)
    assert data["endpoint"] == "text-to-video" and data["output"] == str(out)
    assert data["job"]["status"] == "completed" and data["job"]["result"]["video_url"]
    assert data["job"]["created_at"].endswith("Z")  # the server's JSON, untouched
    assert out.stat().st_size > 0 and result.stderr == ""


def test_sync_is_one_v1_request(
    ltx_env: dict[str, str], proxy: FaultProxy, png_file: Path, tmp_path: Path
) -> None:
    result = ltx(
        "image-to-video",
        "--image-uri",
        str(png_file),
        *T2V[1:],
        "--sync",
        "-o",
        str(tmp_path),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = as_json(result)
    path = Path(data["output"])
    assert data == {"endpoint": "image-to-video", "output": str(path)}  # no job: v1 has none
    assert path.parent == tmp_path and path.name.startswith("image-to-video-")
    assert path.stat().st_size > 0
    assert [s.path for s in proxy.requests("POST")] == ["/v1/upload", "/v1/image-to-video"]
    assert not proxy.requests("GET")  # no polls, no download
    both = ltx(*T2V, "--sync", "--no-wait")
    assert both.exit_code == 2 and "--no-wait" in both.output


def test_every_flag_can_come_from_the_environment(ltx_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        "LTX_PROMPT": "a lighthouse at dusk",
        "LTX_MODEL": "ltx-2-3-fast",
        "LTX_DURATION": "2",
        "LTX_RESOLUTION": "1280x720",
        "LTX_FPS": "25",
        "LTX_GENERATE_AUDIO": "false",
        "LTX_OUTPUT": str(tmp_path / "env.mp4"),
        "LTX_JSON": "1",
    }
    result = ltx("text-to-video", env=env)
    assert result.exit_code == 0, result.output
    assert as_json(result)["output"] == str(tmp_path / "env.mp4")


def test_human_output_is_the_path_alone_with_progress_on_stderr(
    ltx_env: dict[str, str], tmp_path: Path
) -> None:
    result = ltx(*T2V, "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.parent == tmp_path and path.suffix == ".mp4" and path.exists()
    assert "text-to-video job" in result.stderr and "downloading" in result.stderr
    # On a terminal the notes become a live rich display; stdout does not change.
    live = ltx(*T2V, "-o", str(tmp_path / "tty.mp4"), env={"FORCE_COLOR": "1"})
    assert live.exit_code == 0, live.output
    assert live.stdout.strip() == str(tmp_path / "tty.mp4")
    assert "downloading" in live.stderr and "\x1b[" in live.stderr


def test_no_wait_then_status_then_download(ltx_env: dict[str, str], tmp_path: Path) -> None:
    submitted = ltx(*T2V, "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    waited = ltx("status", "text-to-video", job_id, "--wait", "--json")
    assert waited.exit_code == 0, waited.output
    assert as_json(waited)["job"]["status"] == "completed"
    shown = ltx("status", "text-to-video", job_id)
    assert "status: completed" in shown.stdout and "video_url: http" in shown.stdout
    fetched = ltx("download", "text-to-video", job_id, "-o", str(tmp_path / "d.mp4"))
    assert fetched.exit_code == 0 and (tmp_path / "d.mp4").stat().st_size > 0


def test_upload_and_a_local_file_option(
    ltx_env: dict[str, str], png_file: Path, tmp_path: Path
) -> None:
    uploaded = ltx("upload", str(png_file))
    assert uploaded.exit_code == 0, uploaded.output
    assert uploaded.stdout.strip().startswith("ltx://")
    result = ltx(
        "image-to-video",
        "--image-uri",
        str(png_file),
        *T2V[1:],
        "-o",
        str(tmp_path / "i.mp4"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert as_json(result)["job"]["status"] == "completed"


@pytest.mark.parametrize(
    ("args", "env", "code", "kind"),
    [
        (["--model", "ltx-2-fast"], {}, 3, "invalid_request_error"),
        ([], {"LTXV_API_KEY": "wrong"}, 4, "authentication_error"),
        (["--camera-motion", "barrel_roll"], {}, 2, None),  # rejected by the option parser
        (["--timeout", "0.05"], {}, 11, "wait_timeout"),
        (
            [],
            {"LTX_BASE_URL": "http://127.0.0.1:9", "LTX_MAX_RETRIES": "0"},
            10,
            "connection_error",
        ),
    ],
)
def test_exit_codes(
    ltx_env: dict[str, str], args: list[str], env: dict[str, str], code: int, kind: str | None
) -> None:
    result = ltx(*T2V, *args, "--json", env=env)
    assert result.exit_code == code, result.output
    if kind is not None:
        assert as_json(result)["error"]["type"] == kind


def test_exit_codes_for_injected_answers(ltx_env: dict[str, str], proxy: FaultProxy) -> None:
    proxy.fail(429, times=5, error_type="concurrency_limit_error", retry_after="0")
    result = ltx(*T2V, "--max-retries", "1", "--json")
    # the submits only: an earlier test's event stream (a CLI that timed out while
    # waiting) can end, and be logged by the shared proxy, during this test
    assert result.exit_code == 8 and len(proxy.requests("POST")) == 2
    assert as_json(result)["status_code"] == 429
    proxy.reset()
    proxy.fail(503, times=5, error_type="service_unavailable")
    assert ltx(*T2V, "--max-retries", "0").exit_code == 9
    proxy.reset()
    assert ltx("status", "retake", "00000000-0000-0000-0000-000000000000").exit_code == 6


def test_a_failed_job_exits_with_its_error_code(ltx_env: dict[str, str]) -> None:
    unreachable = "https://host.invalid/photo.png"  # accepted at submit, fails in the worker
    result = ltx("image-to-video", "--image-uri", unreachable, *T2V[1:], "--json")
    assert result.exit_code == 3, result.output
    data = as_json(result)
    assert data["error"]["type"] == "invalid_request_error"
    assert data["job"]["status"] == "failed"


def test_usage_errors_exit_2(
    ltx_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert ltx("text-to-video", "--prompt", "x").exit_code == 2  # missing required options
    assert ltx(*T2V[:-2], "--duration", "soon").exit_code == 2
    monkeypatch.delenv("LTXV_API_KEY")
    result = ltx(*T2V, "--json")
    assert result.exit_code == 2 and as_json(result)["error"]["type"] == "configuration_error"
    missing = ltx("image-to-video", "--image-uri", str(tmp_path / "nope.png"), *T2V[1:])
    assert missing.exit_code in (2, 3)


def test_as_a_real_subprocess(server: Server, proxy: FaultProxy, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LTX_BASE_URL": proxy.url,
        "LTXV_API_KEY": server.api_key,
        "LTX_POLL_INTERVAL": "0.1",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltxserve.client.cli",
            *T2V,
            "-o",
            str(tmp_path / "p.mp4"),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == str(tmp_path / "p.mp4")
    version = subprocess.run(
        [sys.executable, "-m", "ltxserve.client.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert version.returncode == 0 and "ltxserve" in version.stdout


def test_help_shows_every_flag_whole_and_bare() -> None:
    result = CliRunner().invoke(
        app, ["text-to-video", "--help"], terminal_width=120, env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0
    assert "--no-generate-audio" in result.stdout  # not cut off ("--no-generate-au…")
    assert "<bool>" not in result.stdout  # plain flags take no value
    assert "<str>" in result.stdout  # options that take one still say what


def test_missing_key_names_the_cli_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LTXV_API_KEY", raising=False)
    result = ltx("status", "text-to-video", "abc")
    assert result.exit_code == 2
    assert "--api-key" in result.stderr and "api_key=" not in result.stderr


def test_errors_are_not_wrapped_off_a_terminal(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COLUMNS": "40",
        "LTXV_API_KEY": "k",
        "LTX_MAX_RETRIES": "0",
        "LTX_BASE_URL": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.client.cli", *T2V, "-o", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 10
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error")]
    assert "connection_error" in line and "refused" in line.lower(), out.stderr


def test_progress_is_reported_every_second_on_a_short_job(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Default poll settings, stderr a pipe: a 20 s clip (a preview job of several
    seconds even on a quiet machine) shows its percentage moving, not a bare
    "processing" (a 5 s poll and 5 s heartbeats saw nothing)."""
    srv = make_server(engine="preview", env={"LTXSERVE_HEARTBEAT_SECONDS": "5"})
    env = {k: v for k, v in os.environ.items() if k != "LTX_POLL_INTERVAL"}
    env.update(LTX_BASE_URL=srv.base_url, LTXV_API_KEY=srv.api_key)
    args = [*T2V[:-4], "--duration", "20", "--resolution", "1920x1080"]
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.client.cli", *args, "-o", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    steps = [ln for ln in out.stderr.splitlines() if ln.startswith("processing ")]
    assert len(steps) >= 2 and all(ln.endswith("%") for ln in steps), out.stderr
