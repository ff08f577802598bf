"""Model-engine overhead: a job through the server next to the bare diffusers call, same run.

Builds the tiny random LTX-2 of tests/engines/tiny_ltx.py (or uses --weights), then
times, with the same model, inputs, size, steps and thread count:

  bare      LTX2Pipeline(...) in this process (what a script calling diffusers does)
  bare+mp4  the same call plus writing its frames and audio to an H.264/AAC MP4
  server    POST /v2/text-to-video to `ltxserve serve --engine ltx` (1 worker), job wall
            time from the job's own created_at -> completed_at

The generation runs at the requested resolution (no max_pixels cap, rounded to the
VAE grid) so the bare call does the same work as the engine. Overhead is
server / bare+mp4 - 1 (target <= 3%: issue 5); server / bare is printed too.
Warm-up runs are excluded; each figure is the median of --reps runs, run one after
another so the two never compete for the 2 cores.

Usage: python bench/bench_ltx.py [--reps 3] [--steps 40] [--resolution 1280x720]
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
    return {"models": {"ltx-2-3-pro": {
        "path": str(weights), "device": "cpu", "dtype": "float32", "steps": steps,
        "guidance_scale": 1.0, "stg_scale": 0.0, "modality_scale": 1.0,
        "audio_guidance_scale": 1.0, "stg_blocks": None, "max_sequence_length": 16,
        "cpu_threads": threads, "seed": 0}}}


def bare(weights: Path, reg: dict[str, Any], body: dict[str, Any], reps: int,
         out_dir: Path) -> tuple[list[float], list[float]]:
    import torch

    from ltxserve.engines.ltx.generate import schedule
    from ltxserve.engines.ltx.geometry import frames_up, gen_size
    from ltxserve.engines.ltx.loader import offline
    from ltxserve.engines.ltx.registry import ModelSpec
    from ltxserve.engines.plan import parse_resolution
    from ltxserve.media.writer import VideoWriter

    offline()
    from diffusers import LTX2Pipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    entry = dict(reg["models"]["ltx-2-3-pro"])
    spec = ModelSpec(name="ltx-2-3-pro", **{**entry, "path": Path(entry["path"])})
    torch.set_num_threads(spec.cpu_threads or 1)
    pipe = LTX2Pipeline.from_pretrained(str(weights), dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    w, h = gen_size(*parse_resolution(body["resolution"]), pipe.vae_spatial_compression_ratio,
                    None)
    fps = body["fps"]
    frames = frames_up(body["duration"] * fps, pipe.vae_temporal_compression_ratio)
    kwargs = schedule(spec, None)
    gen_times, total_times = [], []
    for rep in range(reps + 1):
        started = time.perf_counter()
        out = pipe(prompt=body["prompt"], width=w, height=h, num_frames=frames,
                   frame_rate=float(fps), generator=torch.Generator("cpu").manual_seed(0),
                   output_type="np", **kwargs)
        generated = time.perf_counter()
        video = (out.frames[0] * 255 + 0.5).astype("uint8")
        audio = out.audio[0].float().numpy()
        with VideoWriter(out_dir / f"bare{rep}.mp4", w, h, fps, audio=True,
                         audio_rate=int(pipe.vocoder.config.output_sampling_rate)) as wr:
            pos = 0
            for frame in video[: body["duration"] * fps]:
                wr.write_frame(frame)
                n = wr.audio_samples_due()
                wr.write_audio(audio[:, pos:pos + n])
                pos += n
        done = time.perf_counter()
        if rep:  # rep 0 is the warm-up
            gen_times.append(generated - started)
            total_times.append(done - started)
    return gen_times, total_times


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def server(reg_file: Path, body: dict[str, Any], reps: int, data: Path) -> list[float]:
    srv = Server(data, engine="ltx", env={"LTXSERVE_LTX_MODELS_FILE": str(reg_file)}).start()
    try:
        times = []
        with srv.client() as c:
            for rep in range(reps + 1):
                job = c.post("/v2/text-to-video", json=body).json()
                done = wait_terminal(c, "text-to-video", job["id"], timeout=900)
                if done["status"] != "completed":
                    raise SystemExit(f"job failed: {done}\n{srv.log()[-3000:]}")
                if rep:
                    times.append(stamp(done["completed_at"]) - stamp(done["created_at"]))
        return times
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resolution", default="1280x720")
    ap.add_argument("--duration", type=int, default=2)
    ap.add_argument("--weights", type=Path, help="diffusers-format weights (default: tiny)")
    args = ap.parse_args()
    body = {"prompt": "a robot dancing in the city at night", "model": "ltx-2-3-pro",
            "duration": args.duration, "resolution": args.resolution, "fps": 24,
            "generate_audio": True}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = args.weights
        if weights is None:
            from tests.engines.tiny_ltx import build_tiny_ltx

            weights = build_tiny_ltx(root / "tiny-ltx")
        reg = registry(weights, args.steps, args.threads)
        reg_file = root / "models.json"
        reg_file.write_text(json.dumps(reg))
        gen, total = bare(weights, reg, body, args.reps, root)
        srv = server(reg_file, body, args.reps, root / "server")
    g, t, s = statistics.median(gen), statistics.median(total), statistics.median(srv)
    print(f"text-to-video {args.resolution} {args.duration}s@24fps, {args.steps} steps, "
          f"{args.threads} thread(s), median of {args.reps}")
    print(f"  bare pipeline call   {g:8.2f} s   runs {' '.join(f'{x:.2f}' for x in gen)}")
    print(f"  bare call + mp4      {t:8.2f} s   runs {' '.join(f'{x:.2f}' for x in total)}")
    print(f"  server job (wall)    {s:8.2f} s   runs {' '.join(f'{x:.2f}' for x in srv)}")
    print(f"  overhead vs bare+mp4 {100 * (s / t - 1):+7.1f} %   (target <= 3%)")
    print(f"  overhead vs bare     {100 * (s / g - 1):+7.1f} %")


if __name__ == "__main__":
    main()
