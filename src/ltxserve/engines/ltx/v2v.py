"""video-to-video-hdr and video-to-video-reframe: the input re-rendered, chunk by chunk.

- hdr: ``LTX2HDRPipeline`` with the input clip as its reference condition (the HDR
  IC-LoRA when configured), decoded through LogC3 to scene-linear light and
  written as half-float EXR frames in a ZIP.
- reframe: ``LTX2Pipeline`` outpainting: the input, scaled to fit the new frame,
  sits centred on the canvas and its latents are held (holds.py) while the
  borders are generated; the output pastes the input's own pixels back over the
  held area and keeps its audio.

Long inputs run in consecutive chunks of at most ``max_frames`` frames. A chunk's
decoded clip (on the device when the model runs there) and its input frames are
released before the next chunk generates, so two chunks are never held at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ltxserve.engines.base import EngineResult, OutputFile
from ltxserve.engines.ltx.geometry import chunks, fit_rect, frames_up
from ltxserve.engines.ltx.holds import Hold, video_hold
from ltxserve.engines.ltx.jobs import JobContext
from ltxserve.engines.ltx.media import fit_length, iter_video_frames, read_audio, read_frames
from ltxserve.engines.ltx.output import ExrZipOutput, Mp4Output, planned_samples, upscale
from ltxserve.jobs.contract.requests import VideoToVideoHdr, VideoToVideoReframe


def _chunk_len(ctx: JobContext[Any]) -> int:
    return ctx.spec.max_frames


def hdr(ctx: JobContext[VideoToVideoHdr]) -> EngineResult:
    from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRReferenceCondition

    plan = ctx.plan
    video = Path(ctx.job.inputs["video_uri"])
    w, h, _ = ctx.grid(plan.width, plan.height, two_stage_ok=False)
    embeds: dict[str, Any] = {}
    if ctx.spec.hdr_embeds is not None:
        from safetensors.torch import load_file

        tensors = load_file(str(ctx.spec.hdr_embeds))
        embeds = {
            "connector_video_embeds": tensors["video_context"],
            "connector_audio_embeds": tensors["audio_context"],
        }
    path = ctx.job.output_dir / "frames.zip"
    out_zip = ExrZipOutput(path, plan)
    parts = chunks(plan.frames, _chunk_len(ctx))
    for n, (start, count) in enumerate(parts):
        frames = frames_up(count, ctx.temporal)
        clip = read_frames(video, w, h, start, count, pad_to=frames)
        gen = ctx.generation(
            "hdr",
            w,
            h,
            frames,
            float(plan.fps),
            False,
            reference_conditions=[LTX2HDRReferenceCondition(frames=clip)],
            **embeds,
        )
        del clip  # held by the condition only
        out = ctx.run(gen, 0.95 * n / len(parts), 0.95 * (n + 0.9) / len(parts))
        del gen
        for frame in out.scene_linear[:count]:
            out_zip.write(frame)
        del out
        ctx.progress(0.95 * (n + 1) / len(parts))
    out_zip.close()
    ctx.progress(1.0)
    return EngineResult(
        {"exr_frames_url": OutputFile(path, "application/zip")},
        {"engine": "ltx", "transfer": "scene-linear"},
    )


def _canvas(
    clip: NDArray[np.uint8], width: int, height: int, rect: tuple[int, int, int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    x, y, w, h = rect
    canvas = np.full((len(clip), height, width, 3), 128, np.uint8)
    canvas[:, y : y + h, x : x + w] = clip
    known = np.zeros((height, width), bool)
    known[y : y + h, x : x + w] = True
    return canvas, known


def reframe(ctx: JobContext[VideoToVideoReframe]) -> EngineResult:
    plan = ctx.plan
    video = Path(ctx.job.inputs["video_uri"])
    info = ctx.infos["video_uri"].video
    assert info is not None
    w, h, two = ctx.grid(plan.width, plan.height)
    track = read_audio(video)
    audio = fit_length(track, planned_samples(plan)) if plan.audio else None
    out_rect = fit_rect(info.width, info.height, plan.width, plan.height)
    path = ctx.job.output_dir / "video.mp4"
    parts = chunks(plan.frames, _chunk_len(ctx))
    decoded = iter_video_frames(video)
    seed = ctx.seed
    with Mp4Output(path, plan, audio) as mp4:
        for n, (start, count) in enumerate(parts):
            frames = frames_up(count, ctx.temporal)

            def hold(pipe: Any, gw: int, gh: int, start: int = start, frames: int = frames) -> Hold:
                rect = fit_rect(info.width, info.height, gw, gh)
                clip = read_frames(video, rect[2], rect[3], start, frames, pad_to=frames)
                canvas, known = _canvas(clip, gw, gh, rect)
                del clip
                return video_hold(pipe, canvas, known, torch.Generator("cpu").manual_seed(seed))

            gen = ctx.generation("t2v", w, h, frames, float(plan.fps), two)
            gen.video_hold = hold
            out = ctx.run(gen, 0.95 * n / len(parts), 0.95 * (n + 0.9) / len(parts))
            del gen, hold
            x, y, fw, fh = out_rect
            for i in range(count):
                big = upscale(out.frames[i], plan.width, plan.height).copy()
                src = next(decoded, None)
                if src is not None:
                    big[y : y + fh, x : x + fw] = src.reformat(
                        width=fw, height=fh, format="rgb24"
                    ).to_ndarray()
                mp4.write_rgb(big)
            del out  # the decoded chunk: not held while the next one generates
            ctx.progress(0.95 * (n + 1) / len(parts))
    ctx.progress(1.0)
    return EngineResult({"video_url": OutputFile(path, "video/mp4")}, {"engine": "ltx"})
