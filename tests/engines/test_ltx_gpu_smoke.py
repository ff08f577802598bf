"""bench/gpu_smoke.py: without CUDA it says so and runs nothing; its checks run on CPU too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the ltx engine tests need torch (the 'ltx' extra)")
pytest.importorskip("diffusers", reason="the ltx engine tests need diffusers (the 'ltx' extra)")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_smoke.py"


def smoke(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "CUDA_VISIBLE_DEVICES": "",  # the machine without CUDA, even on a GPU host
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_without_cuda_it_says_so_and_exits_0_without_running() -> None:
    started = time.monotonic()
    done = smoke(timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "gpu_smoke: needs CUDA (torch.cuda.is_available() is False); nothing was run."
    )
    assert time.monotonic() - started < 60  # no model was built or loaded


def test_its_checks_pass_on_cpu_with_model_offload(tmp_path: Path) -> None:
    done = smoke(
        "--allow-cpu",
        "--device",
        "cpu",
        "--offload",
        "model",
        "--endpoints",
        "text-to-video",
        "--max-pixels",
        str(96 * 64),
        "--keep",
        str(tmp_path),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gpu_smoke: all checks passed" in done.stdout
    for job in ("t2v pro 720p", "t2v pro 1080p (2 stages)", "t2v fast 720p"):
        assert f"| model | float32 | {job} | n/a |" in done.stdout
    assert "latent upsampler" in done.stdout and "prompt encoding" in done.stdout
