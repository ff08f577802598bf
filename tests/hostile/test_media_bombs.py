"""Item 4 of issue 17: media bombs. Proves: no 5xx, bounded memory (checker and API process).

A 3.9 KB MP4 whose sample tables claim 89,000,000 samples made FFmpeg's demuxer
build a 1.1 GB index while opening it, in the API process, at submit (four at
once: 2.5 GB). The claims are now checked against the file's size before FFmpeg
opens the file (ltxserve.media.boxes).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.hostile.bombs import sample_table_bomb
from tests.inputs.media import bomb_png
from tests.support import Server, assert_error

INSPECT_SCRIPT = """
import json, resource, sys
from pathlib import Path
from ltxserve.errors import InvalidRequestError
from ltxserve.inputs.media import inspect
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    inspect("video_uri", Path(sys.argv[1]))
    message = None
except InvalidRequestError as exc:
    message = exc.message
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kib": peak - base, "message": message}))
"""
# FFmpeg's own open and demux of a small file: a few MB; the bomb used to add 1.1 GB.
GROWTH_CEILING_MIB = 100


@pytest.mark.parametrize("variant", ["stsz", "stts", "both"])
def test_sample_table_bomb_checked_in_bounded_memory(tmp_path: Path, variant: str) -> None:
    """Bounded memory: inspecting the bomb grows the process by < 100 MB, and it is a 400."""
    path = tmp_path / "bomb.mp4"
    path.write_bytes(sample_table_bomb(stts=variant != "stsz", stsz=variant != "stts"))
    out = subprocess.run(
        [sys.executable, "-c", INSPECT_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["message"] and "video_uri" in result["message"], result
    assert result["grew_kib"] < GROWTH_CEILING_MIB * 1024, result


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _bombs() -> list[tuple[str, dict[str, object], str]]:
    mp4 = base64.b64encode(sample_table_bomb()).decode()
    png = base64.b64encode(bomb_png()).decode()
    return [
        (
            "retake",
            {"video_uri": f"data:video/mp4;base64,{mp4}", "start_time": 0, "duration": 2},
            "video_uri",
        ),
        # the decompression bomb from tests/inputs (50000x50000 PNG in a few KB)
        (
            "image-to-video",
            {
                "image_uri": f"data:image/png;base64,{png}",
                "prompt": "a fox",
                "model": "ltx-2-3-fast",
                "duration": 2,
                "resolution": "1280x720",
            },
            "image_uri",
        ),
    ]


def test_api_process_memory_ceiling_during_bombs(make_server: Callable[..., Server]) -> None:
    """Bounded memory and no 5xx: eight bombs at once leave the API's peak RSS < +150 MB.

    Peak RSS is the API process's VmHWM from /proc (``serve`` runs the API in its
    own process; workers=0, so nothing else shares it).
    """
    srv = make_server(workers=0)
    assert srv.proc is not None
    bombs = _bombs()
    with srv.client() as c:  # warm up: imports, PyAV, thread pool (not yet the bomb path)
        c.post(
            "/v2/retake",
            json={"video_uri": "data:video/mp4;base64,AAAA", "start_time": 0, "duration": 2},
        )
    before = _rss_kib(srv.proc.pid, "VmRSS")
    answers: list[tuple[str, httpx.Response]] = []

    def send(endpoint: str, body: dict[str, object], field: str) -> None:
        with srv.client() as c:
            answers.append((field, c.post(f"/v2/{endpoint}", json=body)))

    threads = [threading.Thread(target=send, args=bomb) for bomb in bombs for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    peak = _rss_kib(srv.proc.pid, "VmHWM")
    assert len(answers) == len(threads)
    for field, r in answers:
        assert_error(r, 400, "invalid_request_error", field)
    assert peak - before < 150 * 1024, f"API peak RSS grew {(peak - before) // 1024} MB"
