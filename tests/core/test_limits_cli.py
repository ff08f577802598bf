"""`ltxserve keys set-limits` and `keys create --max-concurrency` (docs/limits.md): what
they store and print, and what they refuse (no server needed: they write the database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import FAST_ENV


def run(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **FAST_ENV, **(env or {})}
    full.pop("LTXSERVE_MAX_UNFINISHED_PER_KEY")  # the release's default: 2
    return subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", *args, "--data-dir", str(data_dir)],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_set_limits_shows_and_changes_a_keys_limits(tmp_path: Path) -> None:
    key = run(tmp_path, "keys", "create", "--max-concurrency", "4").stdout.strip().splitlines()[-1]
    out = run(tmp_path, "keys", "set-limits", key[:12])
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "max-concurrency 4 (this key)" in line
    assert "rate unlimited (server default); burst 10 (server default)" in line
    assert key not in line  # the secret is never printed back

    out = run(tmp_path, "keys", "set-limits", key, "--rate", "0.5", "--burst", "3")
    assert "rate 0.5/s (this key); burst 3 (this key)" in out.stdout, out.stdout
    out = run(tmp_path, "keys", "set-limits", key[:12], "--max-concurrency", "default")
    assert "max-concurrency 2 (server default)" in out.stdout, out.stdout
    out = run(
        tmp_path,
        "keys",
        "set-limits",
        key[:12],
        "--rate",
        "default",
        env={"LTXSERVE_RATE_LIMIT_PER_SECOND": "7"},
    )
    assert "rate 7/s (server default)" in out.stdout, out.stdout
    out = run(tmp_path, "keys", "set-limits", key[:12], "--max-concurrency", "unlimited")
    assert "max-concurrency unlimited (this key)" in out.stdout, out.stdout


def test_bad_values_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    for args in (
        ["keys", "create", "--max-concurrency", "lots"],
        ["keys", "create", "--max-concurrency", "-1"],
    ):
        out = run(tmp_path, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "--max-concurrency" in out.stderr
    assert run(tmp_path, "keys", "list").stdout == ""  # no key was made
    key = run(tmp_path, "keys", "create").stdout.strip().splitlines()[-1]
    for opt, value in (("--rate", "nan"), ("--rate", "fast"), ("--burst", "0")):
        out = run(tmp_path, "keys", "set-limits", key[:12], opt, value)
        assert out.returncode == 2 and opt in out.stderr, (opt, value, out.stderr)
    out = run(tmp_path, "keys", "set-limits", "zzzzzz", "--max-concurrency", "1")
    assert out.returncode == 1 and "matches no key" in out.stderr, out.stderr
