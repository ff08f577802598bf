"""The runner protocol in a real child process: Stop unwinds a job and keeps the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ltxserve.config import Settings
from ltxserve.engines import get_engine
from ltxserve.engines.dispatch import run_job
from ltxserve.runner import Done, Progress, RunJob, Stop, Stopped, plain_metadata
from ltxserve.worker import Runner

LONG = {
    "prompt": "a red fox in snow",
    "model": "ltx-2-3-fast",
    "duration": 10,
    "resolution": "1920x1080",
    "fps": 25,
    "generate_audio": False,
}
SHORT = {**LONG, "duration": 1, "resolution": "640x360"}


def next_terminal(runner: Runner, job_id: str, timeout: float = 60) -> object:
    seen_progress = False
    while True:
        msg = runner.recv(timeout)
        assert msg is not None, f"no answer for {job_id} within {timeout} s"
        if isinstance(msg, Progress):
            seen_progress = True
            continue
        assert getattr(msg, "job_id", None) == job_id, msg
        return msg, seen_progress


def test_stop_unwinds_the_job_and_the_runner_runs_the_next(tmp_path: Path) -> None:
    runner = Runner("preview", Settings())
    runner.start()
    try:
        pid = runner.proc.pid
        (tmp_path / "a").mkdir()
        runner.send(RunJob("a", "text-to-video", LONG, {}, str(tmp_path / "a")))
        first = runner.recv(60)
        assert isinstance(first, Progress), first  # it is generating
        runner.send(Stop("a"))
        msg, _ = next_terminal(runner, "a", timeout=10)
        assert isinstance(msg, Stopped)

        # a Stop for a job that already ended (the race) is ignored, not fatal
        runner.send(Stop("a"))
        (tmp_path / "b").mkdir()
        runner.send(RunJob("b", "text-to-video", SHORT, {}, str(tmp_path / "b")))
        msg, progressed = next_terminal(runner, "b")
        assert isinstance(msg, Done) and progressed
        assert Path(msg.outputs["video_url"][0]).stat().st_size > 1000
        # a Stop naming another job does not touch the one running
        (tmp_path / "c").mkdir()
        runner.send(RunJob("c", "text-to-video", SHORT, {}, str(tmp_path / "c")))
        runner.send(Stop("b"))
        msg, _ = next_terminal(runner, "c")
        assert isinstance(msg, Done)
        assert runner.proc.pid == pid and runner.proc.is_alive()
    finally:
        runner.stop()


def test_the_engines_metadata_crosses_the_pipe(tmp_path: Path) -> None:
    """What the engine returns besides its files (engine, seed, theme...) reaches the
    worker in Done, the same as the engine run in this process returns it."""
    engine = get_engine("preview", Settings())
    (tmp_path / "here").mkdir()
    out = tmp_path / "here"
    expected = run_job(engine, "here", "text-to-video", SHORT, {}, out, lambda _f: None).metadata
    assert expected["engine"] == "preview" and isinstance(expected["seed"], int), expected
    runner = Runner("preview", Settings())
    runner.start()
    try:
        (tmp_path / "there").mkdir()
        runner.send(RunJob("there", "text-to-video", SHORT, {}, str(tmp_path / "there")))
        msg, _ = next_terminal(runner, "there")
    finally:
        runner.stop()
    assert isinstance(msg, Done) and msg.metadata == expected, msg


def test_metadata_becomes_plain_json() -> None:
    """numpy numbers (a seed drawn with numpy) become Python ones; what JSON cannot
    hold becomes text rather than failing a finished job in the store."""
    meta = plain_metadata(
        {"seed": np.int64(7), "peak": np.float32(0.5), "frames": [np.int64(1), 2], "p": Path("/x")}
    )
    assert meta == {"seed": 7, "peak": 0.5, "frames": [1, 2], "p": "/x"}
    assert type(meta["seed"]) is int
