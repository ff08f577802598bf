"""The model engine's pure parts: grid and span arithmetic, the registry file. No torch needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ltxserve.engines.ltx.geometry import (
    chunks,
    extend_span,
    fit_rect,
    frames_down,
    frames_up,
    gen_size,
    generation_rate,
    keyframe_start,
    retake_span,
)
from ltxserve.engines.ltx.registry import RegistryError, load_registry, weights_problems


def test_frame_rounding_follows_the_vae() -> None:
    assert [frames_up(n) for n in (1, 2, 9, 10, 48, 121)] == [1, 9, 9, 17, 49, 121]
    assert [frames_down(n) for n in (0, 1, 8, 9, 48)] == [0, 1, 1, 9, 41]
    assert [keyframe_start(n) for n in (1, 2, 9, 10, 47)] == [1, 9, 9, 17, 49]


@pytest.mark.parametrize(
    "size", [(1280, 720), (720, 1280), (1920, 1080), (3840, 2160), (1080, 1350), (720, 720)]
)
@pytest.mark.parametrize("multiple", [32, 64])
def test_generation_size_is_a_grid_multiple_under_the_cap(
    size: tuple[int, int], multiple: int
) -> None:
    w, h = gen_size(*size, multiple, None)
    assert w % multiple == 0 and h % multiple == 0
    assert abs(w - size[0]) <= multiple // 2 and abs(h - size[1]) <= multiple // 2
    w, h = gen_size(*size, multiple, 768 * 512)
    assert w % multiple == 0 and h % multiple == 0 and w * h <= 768 * 512
    assert abs(w / h - size[0] / size[1]) < 0.35


def test_fit_rect_centres_and_keeps_aspect() -> None:
    assert fit_rect(160, 90, 720, 1280) == (0, 438, 720, 404)
    assert fit_rect(1920, 1080, 1920, 1080) == (0, 0, 1920, 1080)


def test_retake_span_puts_conditions_on_latent_boundaries() -> None:
    s = retake_span(total=240, window_start=100, window_end=150, context=48)
    assert s.window_start - s.start == s.pre and (s.pre - 1) % 8 == 0
    assert (s.suffix_at - 1) % 8 == 0 and s.suffix_at >= s.pre + 50
    assert (s.post - 1) % 8 == 0 and s.start + s.suffix_at + s.post <= 240
    assert (s.frames - 1) % 8 == 0 and s.frames >= s.suffix_at + s.post
    edge = retake_span(total=100, window_start=0, window_end=400, context=48)
    assert (edge.pre, edge.post, edge.window_end) == (0, 0, 100) and edge.frames >= 100


def test_extend_span_places_context_and_new_frames() -> None:
    end = extend_span("end", 72, 48)
    assert (end.context_at, end.new_at) == (0, end.context) and end.frames >= end.context + 48
    start = extend_span("start", 24, 50)
    assert (start.context_at - 1) % 8 == 0 and start.new_at + 50 == start.context_at
    assert start.frames >= start.context_at + start.context


def test_generation_rate_prefers_a_trained_rate_to_halving() -> None:
    assert generation_rate(10, 50, 505) == 50  # fits: the plan's own rate
    assert generation_rate(20, 25, 481) == 24  # halving gave 12.5 fps
    assert generation_rate(10, 48, 257) == 24
    assert generation_rate(20, 50, 505) == 25
    # nothing trained fits: the highest rate that does (halving gave 12 fps)
    rate = generation_rate(20, 24, 473)
    assert 23 < rate < 24 and frames_up(int(np.ceil(20 * rate)) + 1) <= 473


def test_chunks_cover_everything() -> None:
    assert chunks(600, 257) == [(0, 257), (257, 257), (514, 86)]


def _weights(d: Path) -> Path:
    (d / "transformer").mkdir(parents=True)
    (d / "transformer" / "config.json").write_text("{}")
    (d / "transformer" / "model.safetensors").write_bytes(b"x")
    (d / "scheduler").mkdir()
    (d / "scheduler" / "scheduler_config.json").write_text("{}")
    (d / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "LTX2Pipeline",
                "transformer": ["diffusers", "X"],
                "scheduler": ["diffusers", "Y"],
                "processor": [None, None],
            }
        )
    )
    return d


def test_registry_resolves_paths_and_checks_weights(tmp_path: Path) -> None:
    _weights(tmp_path / "w")
    (tmp_path / "models.toml").write_text(
        '[defaults]\ndtype = "bfloat16"\n[models."ltx-2-3-pro"]\npath = "w"\n'
        '[models."ltx-2-3-fast"]\npath = "w"\nschedule = "distilled"\n'
    )
    reg = load_registry(tmp_path / "models.toml")
    assert reg.models["ltx-2-3-pro"].path == tmp_path / "w"
    assert reg.models["ltx-2-3-fast"].dtype == "bfloat16"
    reg.check_files()
    assert reg.spec_for("video-to-video-hdr", None).name == "ltx-2-3-pro"
    (tmp_path / "w" / "transformer" / "model.safetensors").unlink()
    with pytest.raises(RegistryError, match="transformer holds no weight files"):
        reg.check_files()
    assert weights_problems(tmp_path / "nope") == [
        f"weights directory {tmp_path / 'nope'} does not exist"
    ]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({}, "'path'"),
        ({"path": "w", "offload": "disk"}, "offload must be one of"),
        ({"path": "w", "max_frames": 100}, "8k\\+1"),
        ({"path": "w", "colour": "red"}, "unknown option"),
    ],
)
def test_registry_rejects_bad_entries(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"models": {"ltx-2-3-pro": entry}}))
    with pytest.raises(RegistryError, match=message):
        load_registry(tmp_path / "m.json")


def test_available_is_false_without_a_registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ltxserve.config import Settings
    from ltxserve.engines.ltx import available

    monkeypatch.delenv("LTXSERVE_LTX_MODELS_FILE", raising=False)
    assert available(Settings()) is False
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setenv("LTXSERVE_LTX_MODELS_FILE", str(tmp_path / "bad.json"))
    assert available(Settings()) is False


def _scheduler(d: Path, dev: bool) -> None:
    (d / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"use_dynamic_shifting": dev, "shift_terminal": 0.1 if dev else None})
    )


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"dtype": "float16"}, "float16 is not supported: Gemma 3"),
        ({"dtype": "float32", "device": "cuda"}, "float32 is for CPU test runs"),
        ({"upsampler": "up"}, "needs stage2_lora"),
        ({"hdr_embeds": "e.safetensors"}, "hdr_lora/hdr_embeds need schedule distilled"),
        ({"hdr_lora": "l.safetensors"}, "hdr_lora/hdr_embeds need schedule distilled"),
    ],
)
def test_registry_refuses_recipes_diffusers_does_not_support(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    (tmp_path / "m.json").write_text(
        json.dumps({"models": {"ltx-2-3-pro": {"path": "w", **entry}}})
    )
    with pytest.raises(RegistryError, match=message):
        load_registry(tmp_path / "m.json")


def test_registry_allows_bfloat16_everywhere_and_float32_on_cpu(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "models": {
                    "a": {"path": "w"},
                    "b": {"path": "w", "dtype": "float32", "device": "cpu"},
                    "c": {
                        "path": "w",
                        "schedule": "distilled",
                        "hdr_lora": "l",
                        "hdr_embeds": "e",
                        "upsampler": "up",
                    },
                    "d": {"path": "w", "upsampler": "up", "stage2_lora": "lora"},
                }
            }
        )
    )
    reg = load_registry(tmp_path / "m.json")
    assert [s.dtype for s in reg.models.values()] == ["bfloat16", "float32", "bfloat16", "bfloat16"]


def test_registry_warns_when_the_schedule_does_not_match_the_checkpoint(tmp_path: Path) -> None:
    _scheduler(_weights(tmp_path / "dev"), dev=True)
    _scheduler(_weights(tmp_path / "distilled"), dev=False)
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "models": {
                    "ltx-2-3-pro": {"path": "dev"},
                    "ltx-2-3-fast": {"path": "distilled", "schedule": "distilled"},
                }
            }
        )
    )
    reg = load_registry(tmp_path / "m.json")
    reg.check_files()
    assert reg.warnings == []
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "models": {
                    "ltx-2-3-pro": {"path": "distilled"},
                    "ltx-2-3-fast": {"path": "dev", "schedule": "distilled"},
                }
            }
        )
    )
    reg = load_registry(tmp_path / "m.json")
    reg.check_files()
    assert [w.split(":")[0] for w in reg.warnings] == ["ltx-2-3-pro", "ltx-2-3-fast"]
    assert "looks like a dev checkpoint" in reg.warnings[1]
