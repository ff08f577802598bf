"""The runner protocol in a real child process: Stop unwinds a job and keeps the engine."""

from __future__ import annotations

from pathlib import Path

from ltxserve.runner import Done, Progress, RunJob, Stop, Stopped
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
    runner = Runner("preview")
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
