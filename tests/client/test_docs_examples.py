"""Every ```python block of docs/sdk.md and of the README runs, unedited, against the
real server; so do the README's ```sh examples.

Docs that are not run go stale. Each block is a complete program. It runs in a
fresh namespace, in a directory holding the input files the page promises
(photo.png, clip.mp4, speech.wav), with LTX_BASE_URL and LTXV_API_KEY pointing at
the test server. LTX_POLL_INTERVAL shortens the documented 5 s poll.

README blocks run in an empty directory with LTX_BASE_URL and LTXV_API_KEY set as the
README tells. Its ```sh examples run with bash: their `export` lines are the
environment this test provides (it checks they name only those variables), the rest
as written, with the `ltx` installed beside this Python first on PATH. The README's
Quick start and test command are checked by tests/test_readme.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.media import mp4_bytes, png_bytes, wav_bytes
from tests.support import ROOT, Server
from tests.test_readme import EXPORTED, README, blocks, example_sh

DOC = ROOT / "docs" / "sdk.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_page_has_examples() -> None:
    assert len(python_blocks()) >= 8


@pytest.mark.parametrize(
    ("line", "code"), python_blocks(), ids=[f"sdk.md:{line}" for line, _ in python_blocks()]
)
def test_doc_example_runs(
    line: int, code: str, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "photo.png").write_bytes(png_bytes(128, 72))
    (tmp_path / "clip.mp4").write_bytes(mp4_bytes(320, 180, 24, 80))
    (tmp_path / "speech.wav").write_bytes(wav_bytes(2.1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_BASE_URL", server.base_url)
    monkeypatch.setenv("LTXV_API_KEY", server.api_key)
    monkeypatch.setenv("LTX_POLL_INTERVAL", "0.1")
    exec(compile(code, f"{DOC}:{line}", "exec"), {"__name__": "__main__"})


@pytest.mark.parametrize(
    ("heading", "line", "code"),
    blocks("python"),
    ids=[f"README.md:{line}" for _, line, _ in blocks("python")],
)
def test_python_example_runs(
    heading: str,
    line: int,
    code: str,
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_BASE_URL", server.base_url)
    monkeypatch.setenv("LTXV_API_KEY", server.api_key)
    monkeypatch.delenv("LTX_POLL_INTERVAL", raising=False)
    exec(compile(code, f"{README}:{line}", "exec"), {"__name__": "__main__"})
    written = [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]
    assert written and all(p.stat().st_size > 0 for p in written), heading


def test_shell_examples_run(server: Server, tmp_path: Path) -> None:
    examples = example_sh()
    assert len(examples) >= 2
    env = {
        **os.environ,
        "LTX_BASE_URL": server.base_url,
        "LTXV_API_KEY": server.api_key,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("LTX_POLL_INTERVAL", None)
    for heading, line, code in examples:
        lines = code.strip().splitlines()
        exports = {ln.split()[1].split("=")[0] for ln in lines if ln.startswith("export ")}
        assert exports <= EXPORTED, f"README.md:{line} sets {exports - EXPORTED}"
        script = "\n".join(ln for ln in lines if not ln.startswith("export "))
        if not script.strip():
            continue
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, f"README.md:{line} ({heading}): {out.stderr}"
    assert (tmp_path / "storm.mp4").stat().st_size > 0
