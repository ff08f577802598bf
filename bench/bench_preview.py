"""Preview engine benchmark: each endpoint against the encoder alone, in the same run.

For every endpoint a 1920x1080 (or 1080x1920), 8 s job runs through
PreviewEngine.run in this process. One run records every frame and audio chunk
the engine hands to its writer; encoding those ready-made frames and samples
again with exactly the engine's writer settings is the encoder-only time the job
is compared with. Runs alternate (job, encoder, job, encoder, ...). Two ratios
are printed: best job over best encoder time, and the median of each round's
job/encoder pair ("median", the headline: a pair shares the machine's mood,
which on a shared VM moves both by +-15% from minute to minute). Wall and CPU
times are both shown. HDR compares with encoding the same number of ready-made half-float EXR
frames into a ZIP (cycling through 30 of the job's frames to bound memory); its
input is 180 frames, the API's limit for 1080p.

    python bench/bench_preview.py                 # all endpoints, 5 rounds
    python bench/bench_preview.py --rounds 3 text-to-video retake
    python bench/bench_preview.py --memory        # peak RSS: 4K 20 s vs 1080p 2 s

Targets (docs/preview-engine.md): job <= 1.3x encoder-only; text-to-video at
1080p 8 s faster than real time on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engines.preview_support import (  # noqa: E402
    tone,
    write_image,
    write_video,
    write_wav,
)

from ltxserve.config import Settings  # noqa: E402
from ltxserve.engines.dispatch import run_job  # noqa: E402
from ltxserve.engines.preview import PreviewEngine  # noqa: E402
from ltxserve.engines.preview.output import PreviewWriter  # noqa: E402
from ltxserve.media.exr import decode_exr, encode_exr  # noqa: E402
from ltxserve.media.yuv import Yuv420  # noqa: E402

SECONDS = 8
INPUT_CRF = 20  # input videos at a typical delivery quality (x264 ultrafast, ~10 Mbit/s)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    w, c = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - w, cpu_seconds() - c


def make_inputs(d: Path) -> dict[str, Path]:
    print("making inputs (1080p video 8 s / 6 s / 7.5 s, image, wav) ...", flush=True)
    return {
        "video": write_video(d / "v8.mp4", 1920, 1080, 24, 24 * SECONDS, crf=INPUT_CRF),
        "video6": write_video(
            d / "v6.mp4", 1920, 1080, 24, 24 * (SECONDS - 2), seed=2, crf=INPUT_CRF
        ),
        "video_hdr": write_video(
            d / "vh.mp4", 1920, 1080, 24, 180, audio=False, seed=3, crf=INPUT_CRF
        ),
        "image": write_image(d / "img.png", 2400, 1600),
        "wav": write_wav(d / "a.wav", tone(SECONDS)),
    }


def jobs(inp: dict[str, Path]) -> dict[str, tuple[dict[str, Any], dict[str, Path]]]:
    t2v = {
        "prompt": "A neon city street at night in the rain, camera pushing in",
        "model": "ltx-2-3-fast",
        "duration": SECONDS,
        "resolution": "1920x1080",
        "fps": 24,
        "generate_audio": True,
        "camera_motion": "dolly_in",
    }
    return {
        "text-to-video": (t2v, {}),
        "image-to-video": (
            {**t2v, "prompt": "slow pan", "camera_motion": "dolly_right", "image_uri": "ltx://i"},
            {"image_uri": inp["image"]},
        ),
        "audio-to-video": (
            {
                "audio_uri": "ltx://a",
                "prompt": "waves on a beach",
                "image_uri": None,
                "resolution": "1920x1080",
                "model": "ltx-2-3-pro",
                "guidance_scale": 5.0,
            },
            {"audio_uri": inp["wav"]},
        ),
        "retake": (
            {
                "video_uri": "ltx://v",
                "prompt": "fire",
                "start_time": 2.0,
                "duration": 4.0,
                "mode": "replace_audio_and_video",
                "resolution": None,
                "model": "ltx-2-3-pro",
            },
            {"video_uri": inp["video"]},
        ),
        "extend": (
            {
                "video_uri": "ltx://v",
                "prompt": "into the forest",
                "duration": 2.0,
                "mode": "end",
                "model": "ltx-2-3-pro",
                "context": None,
            },
            {"video_uri": inp["video6"]},
        ),
        "video-to-video-hdr": ({"video_uri": "ltx://v"}, {"video_uri": inp["video_hdr"]}),
        "video-to-video-reframe": (
            {"video_uri": "ltx://v", "model": "ltx-2-3-pro", "resolution": "1080x1920"},
            {"video_uri": inp["video"]},
        ),
    }


class Recorder:
    """Keeps a copy of everything the engine hands to its writer, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, np.ndarray]] = []
        self.size: tuple[int, int, Any, bool] | None = None
        self.threads = 0  # the encoder's, as the job's writer had them

    def __enter__(self) -> Recorder:
        rec = self
        self._saved = (
            PreviewWriter.__init__,
            PreviewWriter.write_video_frame,
            PreviewWriter.write_audio,
        )
        init, write_video_frame, write_audio = self._saved

        def _init(
            self: PreviewWriter, path: Any, width: int, height: int, fps: Any, **kw: Any
        ) -> None:
            rec.size = (width, height, fps, bool(kw.get("audio")))
            rec.threads = kw["threads"]
            init(self, path, width, height, fps, **kw)

        def _frame(self: PreviewWriter, frame: av.VideoFrame) -> None:  # write_yuv lands here
            rec.events.append(("v", Yuv420.from_frame(frame).data))
            write_video_frame(self, frame)

        def _audio(self: PreviewWriter, samples: np.ndarray) -> None:
            rec.events.append(("a", samples.copy()))
            write_audio(self, samples)

        for attr, fn in (
            ("__init__", _init),
            ("write_video_frame", _frame),
            ("write_audio", _audio),
        ):
            setattr(PreviewWriter, attr, fn)
        return self

    def __exit__(self, *exc: object) -> None:
        for attr, fn in zip(
            ("__init__", "write_video_frame", "write_audio"), self._saved, strict=True
        ):
            setattr(PreviewWriter, attr, fn)


def video_baseline(rec: Recorder, out: Path) -> tuple[Callable[[], None], int, float]:
    """Encoder-only: the very frames and samples the job encoded, already made."""
    assert rec.size is not None
    w, h, fps, audio = rec.size
    events = rec.events
    frames = sum(1 for kind, _ in events if kind == "v")

    def run() -> None:
        with PreviewWriter(out, w, h, fps, audio=audio, threads=rec.threads) as writer:
            for kind, data in events:
                if kind == "v":
                    writer.write_yuv(Yuv420(data, w, h))
                else:
                    writer.write_audio(data)

    return run, frames, float(frames / fps)


def exr_baseline(path: Path) -> tuple[Callable[[], None], int, float]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        ready = [decode_exr(zf.read(n)) for n in names[:30]]
    out = path.with_name("baseline.zip")

    def run() -> None:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for i in range(len(names)):
                zf.writestr(f"frame_{i:05d}.exr", encode_exr(ready[i % len(ready)]))

    return run, len(names), len(names) / 24


def bench(endpoints: list[str], rounds: int) -> None:
    engine = PreviewEngine(Settings())
    engine.load()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        table = jobs(make_inputs(d))
        print(
            f"\n{'endpoint':24s} {'frames':>6s} {'job s':>7s} {'enc s':>7s} {'ratio':>6s}"
            f" {'median':>6s} {'cpu ratio':>9s} {'enc cores':>9s} {'x realtime':>10s}",
            flush=True,
        )
        for name in endpoints:
            request, inputs = table[name]
            out_dir = d / name
            out_dir.mkdir()
            job = partial(run_job, engine, name, name, request, inputs, out_dir)
            job(lambda f: None)  # warm-up
            rec = Recorder()
            if name == "video-to-video-hdr":
                result = job(lambda f: None)
                run_base, frames, seconds = exr_baseline(next(iter(result.outputs.values())).path)
            else:
                with rec:
                    job(lambda f: None)
                run_base, frames, seconds = video_baseline(rec, d / f"{name}-baseline.mp4")
            best_job, best_base = (1e9, 1e9), (1e9, 1e9)
            paired = []
            for _ in range(rounds):
                wall, cpu = timed(lambda: job(lambda f: None))  # noqa: B023
                best_job = (min(best_job[0], wall), min(best_job[1], cpu))
                base_wall, base_cpu = timed(run_base)
                best_base = (min(best_base[0], base_wall), min(best_base[1], base_cpu))
                paired.append(wall / base_wall)
            print(
                f"{name:24s} {frames:6d} {best_job[0]:7.2f} {best_base[0]:7.2f}"
                f" {best_job[0] / best_base[0]:6.2f} {statistics.median(paired):6.2f}"
                f" {best_job[1] / best_base[1]:9.2f}"
                f" {best_base[1] / best_base[0]:9.2f}"
                f" {seconds / best_job[0]:10.2f}",
                flush=True,
            )
            del run_base, rec  # free the recorded frames before the next endpoint


MEMORY_SCRIPT = """
import json, resource, sys, tempfile
from pathlib import Path
from ltxserve.config import Settings
from ltxserve.engines.dispatch import run_job
from ltxserve.engines.preview import PreviewEngine
res, duration = sys.argv[1], int(sys.argv[2])
with tempfile.TemporaryDirectory() as d:
    req = {"prompt": "A neon city street at night in the rain", "model": "ltx-2-3-fast",
           "duration": duration, "resolution": res, "fps": 24, "generate_audio": True,
           "camera_motion": "dolly_in"}
    run_job(PreviewEngine(Settings()), "m", "text-to-video", req, {}, Path(d), lambda f: None)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def memory() -> None:
    print("peak RSS of text-to-video jobs, each in a fresh process:")
    rss = {}
    for res, dur in (("1920x1080", 2), ("1920x1080", 20), ("3840x2160", 20)):
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, res, str(dur)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        rss[(res, dur)] = json.loads(done.stdout.strip().splitlines()[-1]) / 1024
        print(
            f"  {res} {dur:2d} s: {rss[(res, dur)]:7.1f} MiB  ({time.perf_counter() - t:.1f} s)",
            flush=True,
        )
    base = rss[("1920x1080", 2)]
    print(f"  1080p 20 s / 1080p 2 s = {rss[('1920x1080', 20)] / base:.2f}")
    print(f"  4K 20 s / 1080p 2 s    = {rss[('3840x2160', 20)] / base:.2f}")


def main() -> None:
    names = list(jobs({k: Path() for k in ("video", "video6", "video_hdr", "image", "wav")}))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("endpoints", nargs="*", choices=[*names, []], default=[])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="only the memory comparison")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, affinity: {len(os.sched_getaffinity(0))}")
    if args.memory:
        memory()
        return
    bench(args.endpoints or names, args.rounds)


if __name__ == "__main__":
    main()
