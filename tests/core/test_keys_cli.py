"""`ltxserve keys`: revoke by any unambiguous start, never echo a secret; serve's key hint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import FAST_ENV, Server, free_port


def keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FAST_ENV}
    return subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", "keys", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def listed(data_dir: Path) -> list[list[str]]:
    return [line.split("\t") for line in keys(data_dir, "list").stdout.splitlines()]


def test_revoke_by_any_unambiguous_start_of_what_list_shows(tmp_path: Path) -> None:
    made = [keys(tmp_path, "create", "--name", f"k{i}").stdout.strip() for i in range(3)]
    rows = listed(tmp_path)
    assert len(rows) == 3
    key_id, prefix = rows[0][0], rows[0][1]
    # a start of the id
    out = keys(tmp_path, "revoke", key_id[:8])
    assert out.returncode == 0, out.stderr
    assert key_id in out.stdout
    # a start of the prefix as shown, "..." and all
    prefix1 = listed(tmp_path)[1][1]
    assert prefix1.endswith("...")
    out = keys(tmp_path, "revoke", prefix1[:10])
    if out.returncode:  # two keys may share the first characters: then more is needed
        out = keys(tmp_path, "revoke", prefix1)
    assert out.returncode == 0, out.stderr
    assert [r[4] != "revoked=-" for r in listed(tmp_path)] == [True, True, False]
    assert prefix != prefix1 and made


def test_ambiguous_start_lists_the_candidates_and_revokes_nothing(tmp_path: Path) -> None:
    for i in range(2):
        keys(tmp_path, "create", "--name", f"k{i}")
    out = keys(tmp_path, "revoke", "ltxsk_")
    assert out.returncode == 1
    assert "matches 2 keys" in out.stderr
    for row in listed(tmp_path):
        assert row[0] in out.stderr  # each candidate, by id
        assert row[4] == "revoked=-"
    short = keys(tmp_path, "revoke", "ab")
    assert short.returncode == 1 and "too short" in short.stderr


def test_a_whole_secret_revokes_its_key_and_is_never_printed(tmp_path: Path) -> None:
    secret = keys(tmp_path, "create").stdout.strip().splitlines()[-1]
    out = keys(tmp_path, "revoke", secret)
    assert out.returncode == 0, out.stderr
    assert secret not in out.stdout + out.stderr
    again = keys(tmp_path, "revoke", secret)
    assert again.returncode == 1 and "already revoked" in again.stderr
    assert secret not in again.stdout + again.stderr
    wrong = keys(tmp_path, "revoke", secret[:-3] + "xyz")
    assert wrong.returncode == 1 and "matches no key" in wrong.stderr
    assert secret[:-3] not in wrong.stdout + wrong.stderr


def test_serve_on_a_data_dir_with_keys_says_how_to_make_one(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    data_dir = tmp_path / "d"
    first = make_server(data_dir=data_dir)
    assert "API key (shown once): ltxsk_" in first.log()
    first.stop()
    port = free_port()
    env = {**os.environ, **FAST_ENV, "LTXSERVE_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltxserve.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            "1",
            "--engine",
            "minimal",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(1.5)  # let the worker start: it must add nothing at the default level
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    lines = output.strip().splitlines()
    assert f"ltxserve keys create --data-dir {data_dir}" in output, output
    assert "ltxsk_" not in output  # no key is shown again, none is made
    # start-up output: URL, engine and workers, keys; nothing else (no Alembic INFO)
    assert len(lines) == 3, output
    assert f"http://127.0.0.1:{port}/" in lines[0]
    assert lines[1].startswith("engine: minimal") and "workers: 1" in lines[1]
