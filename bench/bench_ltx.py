"""Model-engine overhead: a job through the server next to the bare diffusers call, same run.

Builds the tiny random LTX-2 of tests/engines/tiny_ltx.py (or uses --weights), then
times, with the same model, inputs, size, steps and thread count:

  bare      LTX2Pipeline(...) in this process (what a script calling diffusers does)
  bare+mp4  the same call plus writing its frames and audio to an H.264/AAC MP4 with
            the server's writer (x264 ultrafast, CRF 20)
  bare+diffusers-export  the same call plus diffusers' own encode_video (the LTX-2
            docs' way to a file: x264 at its default preset)
  bare less post-processing  the bare call minus the time diffusers spends in
            video_processor.postprocess_video (turning the decoded clip into [0, 1]
            floats), which the engine skips: it converts each frame to uint8 as the
            encoder takes it (engines/ltx/frames.py). Against this the overhead is
            what the server adds, the encode included.
  server    POST /v2/text-to-video to `ltxserve serve --engine ltx` (1 worker), job wall
            time from the job's own created_at -> completed_at

A random tiny model's frames are noise, the worst case for an encoder (about 80
Mbit/s at CRF 20); a real model's are not. For scale, the time to encode the same
number of frames of a smooth moving picture at the same size, with the same
writer, is printed too.

The generation runs at the requested resolution (no max_pixels cap, rounded to the
VAE grid) so the bare call does the same work as the engine. Overhead is
server / bare - 1 (target <= 3%: issue 5); against the other three baselines too.
Bare and server runs alternate (bare, server, bare, server, ...), one at a time so
they never compete for the 2 cores; the first round is a warm-up. Overheads are
the median over the rounds of each round's server/bare pair: on a shared VM the
same call moves by +-5% from minute to minute, and a pair shares the moment.

With --in-process each round also runs the job through LtxEngine in the bench's own
process, so server / in-process shows what the API, worker and runner processes,
their IPC, the queue and storage cost.

Usage: python bench/bench_ltx.py [--reps 5] [--steps 40] [--resolution 1280x720]
                                 [--in-process]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import Server, wait_terminal  # noqa: E402


def registry(weights: Path, steps: int, threads: int) -> dict[str, Any]:
    return {
        "models": {
            "ltx-2-3-pro": {
                "path": str(weights),
                "device": "cpu",
                "dtype": "float32",
                "steps": steps,
                "guidance_scale": 1.0,
                "stg_scale": 0.0,
                "modality_scale": 1.0,
                "audio_guidance_scale": 1.0,
                "stg_blocks": None,
                "max_sequence_length": 16,
                "cpu_threads": threads,
                "seed": 0,
            }
        }
    }


class Bare:
    """The bare diffusers pipeline in this process, with the engine's size and schedule."""

    def __init__(
        self, weights: Path, reg: dict[str, Any], body: dict[str, Any], out_dir: Path
    ) -> None:
        import torch

        from ltxserve.engines.ltx.generate import schedule
        from ltxserve.engines.ltx.geometry import frames_up, gen_size
        from ltxserve.engines.ltx.loader import offline
        from ltxserve.engines.ltx.registry import ModelSpec
        from ltxserve.engines.plan import parse_resolution

        offline()
        from diffusers import LTX2Pipeline
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
        entry = dict(reg["models"]["ltx-2-3-pro"])
        spec = ModelSpec(name="ltx-2-3-pro", **{**entry, "path": Path(entry["path"])})
        torch.set_num_threads(spec.cpu_threads or 1)
        self.pipe = LTX2Pipeline.from_pretrained(
            str(weights), dtype=torch.float32, local_files_only=True
        )
        self.pipe.set_progress_bar_config(disable=True)
        self.w, self.h = gen_size(
            *parse_resolution(body["resolution"]), self.pipe.vae_spatial_compression_ratio, None
        )
        self.fps = body["fps"]
        self.keep = body["duration"] * self.fps
        self.frames = frames_up(self.keep, self.pipe.vae_temporal_compression_ratio)
        self.kwargs = schedule(spec, None)
        self.body, self.out_dir = body, out_dir
        self.post = 0.0  # seconds inside diffusers' post-processing, last call
        processor = self.pipe.video_processor
        postprocess = processor.postprocess_video

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return postprocess(*args, **kwargs)
            finally:
                self.post = time.perf_counter() - started

        processor.postprocess_video = timed

    def run(self, rep: int) -> tuple[float, float, float, float]:
        """Seconds: bare call, + the server's MP4 writer, + diffusers' encode_video,
        and the bare call less diffusers' video post-processing."""
        import torch
        from diffusers.utils import encode_video

        from ltxserve.media.writer import VideoWriter

        pipe, fps = self.pipe, self.fps
        rate = int(pipe.vocoder.config.output_sampling_rate)
        started = time.perf_counter()
        out = pipe(
            prompt=self.body["prompt"],
            width=self.w,
            height=self.h,
            num_frames=self.frames,
            frame_rate=float(fps),
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
            **self.kwargs,
        )
        generated = time.perf_counter()
        video = (out.frames[0] * 255 + 0.5).astype("uint8")
        audio = out.audio[0].float().numpy()
        with VideoWriter(
            self.out_dir / f"bare{rep}.mp4", self.w, self.h, fps, audio=True, audio_rate=rate
        ) as wr:
            pos = 0
            for frame in video[: self.keep]:
                wr.write_frame(frame)
                n = wr.audio_samples_due()
                wr.write_audio(audio[:, pos : pos + n])
                pos += n
        written = time.perf_counter()
        encode_video(
            torch.from_numpy(video[: self.keep]),
            fps=fps,
            output_path=str(self.out_dir / f"export{rep}.mp4"),
            audio=torch.from_numpy(audio),
            audio_sample_rate=rate,
        )
        exported = time.perf_counter()
        gen = generated - started
        return gen, written - started, gen + exported - written, gen - self.post


def natural_encode(width: int, height: int, frames: int, fps: int, out_dir: Path) -> float:
    """Seconds to write ``frames`` frames of a smooth panning picture (no audio)."""
    import numpy as np
    from tests.engines.preview_support import picture

    from ltxserve.media.writer import VideoWriter

    big = picture(width + 2 * frames, height)
    ready = [np.ascontiguousarray(big[:, 2 * i : 2 * i + width]) for i in range(frames)]
    best = 1e9
    for _ in range(3):
        started = time.perf_counter()
        with VideoWriter(out_dir / "natural.mp4", width, height, fps) as wr:
            for frame in ready:
                wr.write_frame(frame)
        best = min(best, time.perf_counter() - started)
    return best


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def server_job(c: Any, srv: Server, body: dict[str, Any]) -> float:
    job = c.post("/v2/text-to-video", json=body).json()
    done = wait_terminal(c, "text-to-video", job["id"], timeout=900)
    if done["status"] != "completed":
        raise SystemExit(f"job failed: {done}\n{srv.log()[-3000:]}")
    return stamp(done["completed_at"]) - stamp(done["created_at"])


def runs(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


ROWS = {  # key: (label, overhead label)
    "bare": ("bare pipeline call", "bare call"),
    "unposted": ("bare call less its post-processing", "bare less post-proc."),
    "mp4": ("bare call + server's MP4 writer", "bare + MP4 writer"),
    "export": ("bare call + diffusers encode_video", "bare + encode_video"),
    "engine": ("the engine in this process", "in-process engine"),
    "server": ("server job (wall)", ""),
}


def in_process_engine(reg_file: Path, body: dict[str, Any], root: Path) -> Any:
    """A callable running the job with LtxEngine in this process: the server minus its
    processes (API, worker, runner), IPC, queue and storage."""
    from ltxserve.config import Settings
    from ltxserve.engines.dispatch import run_job
    from ltxserve.engines.ltx import LtxEngine
    from ltxserve.engines.ltx.registry import load_registry

    engine = LtxEngine(Settings(), load_registry(reg_file))
    engine.load()

    def run(rep: int) -> float:
        out = root / f"engine{rep}"
        out.mkdir()
        started = time.perf_counter()
        run_job(engine, f"bench-{rep}", "text-to-video", body, {}, out, lambda _: None)
        return time.perf_counter() - started

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resolution", default="1280x720")
    ap.add_argument("--duration", type=int, default=2)
    ap.add_argument("--weights", type=Path, help="diffusers-format weights (default: tiny)")
    ap.add_argument(
        "--in-process", action="store_true", help="also time the engine in this process each round"
    )
    args = ap.parse_args()
    body = {
        "prompt": "a robot dancing in the city at night",
        "model": "ltx-2-3-pro",
        "duration": args.duration,
        "resolution": args.resolution,
        "fps": 24,
        "generate_audio": True,
    }
    times: dict[str, list[float]] = {k: [] for k in ROWS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = args.weights
        if weights is None:
            from tests.engines.tiny_ltx import build_tiny_ltx

            weights = build_tiny_ltx(root / "tiny-ltx")
        reg = registry(weights, args.steps, args.threads)
        reg_file = root / "models.json"
        reg_file.write_text(json.dumps(reg))
        bare = Bare(weights, reg, body, root)
        engine = in_process_engine(reg_file, body, root) if args.in_process else None
        srv = Server(
            root / "server", engine="ltx", env={"LTXSERVE_LTX_MODELS_FILE": str(reg_file)}
        ).start()
        try:
            with srv.client() as c:
                for rep in range(args.reps + 1):  # alternating; round 0 is the warm-up
                    row = dict(
                        zip(("bare", "mp4", "export", "unposted"), bare.run(rep), strict=True)
                    )
                    row["server"] = server_job(c, srv, body)
                    if engine is not None:
                        row["engine"] = engine(rep)
                    if rep:
                        for key, value in row.items():
                            times[key].append(value)
                        print(
                            f"  round {rep}: "
                            + ", ".join(f"{k} {v:.2f} s" for k, v in row.items()),
                            flush=True,
                        )
        finally:
            srv.stop()
        natural = natural_encode(bare.w, bare.h, bare.keep, bare.fps, root)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    server = times["server"]
    print(
        f"text-to-video {args.resolution} {args.duration}s@24fps, {args.steps} steps, "
        f"{args.threads} thread(s), {args.reps} alternating rounds (medians)"
    )
    for key, (label, _) in ROWS.items():
        if key in med:
            print(f"  {label:<36}{med[key]:7.2f} s   runs {runs(times[key])}")
    for key, (_, label) in ROWS.items():
        if key in med and label:
            pct = 100 * (
                statistics.median(b / a for a, b in zip(times[key], server, strict=True)) - 1
            )
            goal = "   (target <= 3%)" if key == "bare" else ""
            print(f"  overhead vs {label:<24}{pct:+6.1f} %{goal}")
    g, t = med["bare"], med["mp4"]
    print(
        f"  writing the MP4 alone: {t - g:.2f} s = {100 * (t / g - 1):.1f} % of the bare call"
        f"; {bare.keep} smooth frames at that size encode in {natural:.2f} s"
        f" = {100 * natural / g:.1f} %"
    )


if __name__ == "__main__":
    main()
