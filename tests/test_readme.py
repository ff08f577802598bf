"""The README's commands run as written (its examples: tests/client/test_docs_examples.py).

- The Quick start's install command runs on a copy of the checkout with the
  machine's own Debian Python, which is externally managed (PEP 668): the check a
  new user's first minute gets (slow, ~1 min; LTXSERVE_SLOW_TESTS=1, set in CI).
- The README's test command is exactly what `.ci/run` runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, free_port

README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
SYSTEM_PYTHON = Path("/usr/bin/python3")  # Debian's own, as on a stock machine
EXPORTED = {"LTX_BASE_URL", "LTXV_API_KEY"}


def blocks(lang: str) -> list[tuple[str, int, str]]:
    """(section heading, line, code) of every ```lang block."""
    text = README.read_text()
    out = []
    for m in BLOCK.finditer(text):
        if m.group(1) == lang:
            heading = re.findall(r"^## (.+)$", text[: m.start()], re.MULTILINE)[-1]
            out.append((heading, text.count("\n", 0, m.start()) + 1, m.group(2)))
    return out


def quick_start() -> str:
    (code,) = [c for h, _, c in blocks("sh") if h == "Quick start" and "ltxserve serve" in c]
    return code.strip()


def test_command() -> str:
    (code,) = [c for h, _, c in blocks("sh") if h == "Quick start" and "serve" not in c]
    return code.strip()


test_command.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def example_sh() -> list[tuple[str, int, str]]:
    return [b for b in blocks("sh") if b[0] != "Quick start"]


def test_ci_runs_the_readme_test_command() -> None:
    command = test_command()
    assert command == "scripts/test.sh"
    ci = (ROOT / ".ci" / "run").read_text()
    runs = [
        ln
        for ln in ci.splitlines()
        if ln.strip() and not ln.startswith("#") and not ln.startswith(("set ", "cd "))
    ]
    assert runs == [f"exec {command} -q"], runs
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "-m venv" in script  # the Quick start's kind of environment, not the system's


def _externally_managed(python: Path) -> bool:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return (Path(out.stdout.strip()) / "EXTERNALLY-MANAGED").exists()


@pytest.mark.skipif(
    not os.environ.get("LTXSERVE_SLOW_TESTS"),
    reason="installs the package in a fresh venv (~1 min); set LTXSERVE_SLOW_TESTS=1",
)
def test_quick_start_works_with_the_systems_externally_managed_python(tmp_path: Path) -> None:
    """The Quick start line, run as written (plus a free port and a data dir) on a copy
    of the checkout, with only the system's directories on PATH."""
    assert SYSTEM_PYTHON.exists() and _externally_managed(SYSTEM_PYTHON), (
        "the fresh-machine check needs Debian's python3 (apt-get install python3-venv)"
    )
    repo = tmp_path / "ltxserve"
    shutil.copytree(
        ROOT,
        repo,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "artifacts", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("PIP_", "LANG", "LC_", "SSL_", "TMPDIR"))
    }
    env.update(PATH="/usr/bin:/bin", HOME=str(tmp_path / "home"))
    # The premise: a plain `pip install .` is refused by this Python.
    refused = subprocess.run(
        ["python3", "-m", "pip", "install", "--dry-run", "."],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "externally-managed" in refused.stderr, refused.stderr
    port = free_port()
    command = f"{quick_start()} --port {port} --data-dir {tmp_path / 'data'}"
    log = tmp_path / "quick-start.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert proc.poll() is None, log.read_text()
        text = log.read_text()
        assert f"http://127.0.0.1:{port}/" in text and "API key (shown once): ltxsk_" in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
