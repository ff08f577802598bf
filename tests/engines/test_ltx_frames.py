"""The model engine's decoded frames: the raw pipeline output, converted frame by frame.

The engine calls its pipelines with ``output_type=RAW`` and converts each frame to
uint8 itself; these tests hold that conversion to what diffusers' own ``np``
output gives, and the planar frames handed to the encoder to the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the ltx engine tests need torch (the 'ltx' extra)")
pytest.importorskip("diffusers", reason="the ltx engine tests need diffusers (the 'ltx' extra)")

from ltxserve.engines.ltx.frames import (  # noqa: E402
    RAW,
    DecodedFrames,
    LinearFrames,
    allow_raw_output,
)
from ltxserve.engines.ltx.loader import _HDR_COMPONENTS  # noqa: E402
from tests.engines.tiny_ltx import MAX_SEQUENCE_LENGTH, build_tiny_ltx  # noqa: E402


def diffusers_uint8(video: torch.Tensor) -> np.ndarray:
    """(b, 3, f, h, w) in [-1, 1] -> (f, h, w, 3) uint8, the way diffusers' np output + cast go."""
    np_frames = (video[0].permute(1, 2, 3, 0) * 0.5 + 0.5).clamp(0, 1).numpy()
    return (np_frames * 255 + 0.5).astype(np.uint8)


def rgb_of(frame: av.VideoFrame) -> np.ndarray:
    return np.asarray(frame.reformat(format="rgb24").to_ndarray())


@pytest.mark.parametrize("width", [64, 40])  # 40: rows padded in the planar frame
def test_frames_convert_like_diffusers(width: int) -> None:
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(1, 3, 5, 24, width, generator=gen) * 0.7  # some beyond [-1, 1]
    video[0, :, 0, 0, 0] = torch.tensor([-1.0, 1.0, 0.0])
    frames = DecodedFrames(video)
    want = diffusers_uint8(video)
    assert len(frames) == 5
    for i in range(5):
        got = frames[i]
        assert got.shape == (24, width, 3) and got.dtype == np.uint8
        # x*127.5+128 and (x*0.5+0.5)*255+0.5 differ only in float rounding
        assert np.abs(got.astype(int) - want[i]).max() <= 1
        assert np.mean(got == want[i]) > 0.999
        assert np.array_equal(rgb_of(frames.video_frame(i)), got)
    assert tuple(frames[0][0, 0]) == (0, 255, 128)
    assert np.array_equal(frames[-1], frames[4])
    tail = frames[3:]
    assert isinstance(tail, DecodedFrames) and len(tail) == 2
    assert np.array_equal(tail[0], frames[3])
    assert [(f.width, f.height) for f in frames.video_frames()] == [(width, 24)] * 5
    for bad in (5, -6):
        with pytest.raises(IndexError):
            frames[bad]


def test_a_frame_stays_valid_after_the_next_is_converted() -> None:
    video = torch.linspace(-1, 1, 3 * 2 * 8 * 8).reshape(1, 3, 2, 8, 8)
    frames = DecodedFrames(video)
    first = frames[0]
    kept = first.copy()
    frames[1]
    assert np.array_equal(first, kept)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"), upsampler=False)


def test_raw_pipeline_output_gives_diffusers_np_frames(weights: Path) -> None:
    from diffusers import LTX2Pipeline

    pipe = LTX2Pipeline.from_pretrained(str(weights), dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    allow_raw_output(pipe)
    common = dict(
        prompt="a robot in the city",
        width=96,
        height=64,
        num_frames=9,
        frame_rate=24.0,
        num_inference_steps=2,
        guidance_scale=1.0,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
    )
    np_out = pipe(generator=torch.Generator().manual_seed(3), output_type="np", **common)
    raw_out = pipe(generator=torch.Generator().manual_seed(3), output_type=RAW, **common)
    assert raw_out.frames.shape == (1, 3, 9, 64, 96)  # the decoder's own layout
    want = (np_out.frames[0] * 255 + 0.5).astype(np.uint8)
    frames = DecodedFrames(raw_out.frames)
    got = np.stack(list(frames))
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1
    assert np.mean(got == want) > 0.999
    assert torch.equal(raw_out.audio, np_out.audio)
    pt_out = pipe(generator=torch.Generator().manual_seed(3), output_type="pt", **common)
    assert pt_out.frames.shape == (1, 9, 3, 64, 96)  # other output types are untouched


def test_half_precision_output_converts_too() -> None:
    """A GPU run decodes in bf16 (or fp16); frames convert from it without a float32 copy."""
    video = torch.rand(1, 3, 2, 16, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    want = DecodedFrames(video)[1]
    for dtype in (torch.bfloat16, torch.float16):
        got = DecodedFrames(video.to(dtype))
        assert np.abs(got[1].astype(int) - want).max() <= 1
        assert np.array_equal(rgb_of(got.video_frame(1)), got[1])


def test_hdr_frames_are_the_pipelines_own_logc3_decoding_one_frame_at_a_time() -> None:
    from diffusers.pipelines.ltx2.image_processor import LTX2VideoHDRProcessor

    processor = LTX2VideoHDRProcessor()
    video = torch.rand(1, 3, 4, 16, 24, generator=torch.Generator().manual_seed(4)) * 2.4 - 1.2
    whole = processor.postprocess_hdr_video(video, output_type="np")[0]  # (f, h, w, 3)
    frames = LinearFrames(video, processor.postprocess_hdr_video)
    assert len(frames) == 4 and len(frames[1:]) == 3
    for i, frame in enumerate(frames):
        assert frame.dtype == np.float32 and frame.shape == (16, 24, 3)
        np.testing.assert_allclose(frame, np.maximum(whole[i], 0), rtol=1e-6, atol=1e-7)
    assert frames[-1].min() >= 0 and whole.min() < 0  # below LogC3's black: clipped
    assert frames[3].max() > 1  # scene-linear: highlights above 1 survive


def test_the_hdr_pipeline_learns_raw_output_too(weights: Path) -> None:
    from diffusers import LTX2HDRPipeline, LTX2Pipeline

    base = LTX2Pipeline.from_pretrained(str(weights), dtype=torch.float32, local_files_only=True)
    hdr = LTX2HDRPipeline(**{k: base.components[k] for k in _HDR_COMPONENTS})
    allow_raw_output(hdr)
    video = torch.zeros(1, 3, 2, 8, 8)
    assert hdr.hdr_video_processor.postprocess_hdr_video(video, output_type=RAW) is video
    assert hdr.hdr_video_processor.postprocess_hdr_video(video, output_type="pt").shape == (
        1,
        2,
        8,
        8,
        3,
    )
