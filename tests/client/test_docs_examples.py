"""Every ```python block of docs/sdk.md runs, unedited, against the real server.

Docs that are not run go stale. Each block is a complete program. It runs in a
fresh namespace, in a directory holding the input files the page promises
(photo.png, clip.mp4, speech.wav), with LTX_BASE_URL and LTXV_API_KEY pointing at
the test server. LTX_POLL_INTERVAL shortens the documented 5 s poll.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.core.media import mp4_bytes, png_bytes, wav_bytes
from tests.support import ROOT, Server

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
