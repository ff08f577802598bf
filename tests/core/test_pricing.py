"""The credit price of each endpoint (docs/credits.md, "How each endpoint is priced"),
the price table's tiers and fallbacks, and a malformed table stopping a process."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from ltxserve.config import ConfigError, Settings
from ltxserve.inputs.media import InputInfo
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.jobs.contract.requests import validate
from ltxserve.jobs.lifecycle.admission import AllOf, CreditHold, admission_from_settings
from ltxserve.jobs.lifecycle.limits import Limits
from ltxserve.jobs.lifecycle.pricing import PriceTable, input_note

CATALOG = Catalog.load()
PRICES = PriceTable.load()
HTTPS_VIDEO = "https://example.com/in.mp4"


def cost(endpoint: str, body: dict[str, Any], note: dict[str, Any] | None = None) -> int:
    stored = validate(endpoint, body, CATALOG)
    if note is not None:
        stored["_input"] = note
    return PRICES.estimate(endpoint, stored)


def video(seconds: float, width: int = 1920, height: int = 1080, fps: float = 24) -> InputInfo:
    frames = int(seconds * fps)
    size = (width, height)
    return InputInfo("video_uri", "video", "mp4", "h264", *size, Fraction(fps), frames, seconds)


def test_text_and_image_to_video_bill_the_duration_at_the_model_and_tier() -> None:
    t2v = {"prompt": "a fox", "model": "ltx-2-3-pro", "duration": 10, "resolution": "1920x1080"}
    assert cost("text-to-video", t2v) == 60
    assert cost("text-to-video", {**t2v, "model": "ltx-2-3-fast", "resolution": "1280x720"}) == 40
    assert cost("text-to-video", {**t2v, "resolution": "2560x1440", "duration": 6}) == 72
    assert cost("text-to-video", {**t2v, "resolution": "2160x3840", "duration": 6}) == 144
    i2v = {**t2v, "image_uri": "https://example.com/a.png", "duration": 8}
    assert cost("image-to-video", i2v) == 48
    auto = {**t2v, "model": "ltx-2-5-fast", "duration": None}  # priced at the chosen length
    stored = validate("text-to-video", auto, CATALOG)
    assert PRICES.estimate("text-to-video", stored) == 4 * stored["duration"]


def test_input_lengths_price_the_edit_endpoints() -> None:
    a2v = {"prompt": "a song", "audio_uri": "https://example.com/a.wav"}
    assert cost("audio-to-video", a2v) == 120  # unknown length: the longest, 20 s
    assert cost("audio-to-video", a2v, {"seconds": 7.2}) == 44  # 43.2, rounded up
    assert cost("audio-to-video", {**a2v, "resolution": "3840x2160"}) == 240  # 10 s x 24

    retake = {"video_uri": HTTPS_VIDEO, "start_time": 1, "duration": 3}
    assert cost("retake", retake) == 18  # unknown: the section
    assert cost("retake", retake, input_note("retake", {"video_uri": video(12.5)})) == 75

    extend = {"video_uri": HTTPS_VIDEO, "duration": 5}
    assert cost("extend", extend) == 127  # 5 + (505/24 - 5) s of context, x 6
    assert cost("extend", {**extend, "context": 2}) == 42
    short = input_note("extend", {"video_uri": video(4.0, 3840, 2160)})
    assert cost("extend", extend, short) == 9 * 24  # context: all 4 s, at the 4K rate

    assert cost("video-to-video-hdr", {"video_uri": HTTPS_VIDEO}) == 61  # 181/24 s x 8
    hdr = input_note("video-to-video-hdr", {"video_uri": video(1.5, 3840, 2160)})
    assert cost("video-to-video-hdr", {"video_uri": HTTPS_VIDEO}, hdr) == 48

    reframe = {"video_uri": HTTPS_VIDEO, "model": "ltx-2-3-pro", "resolution": "1080x1350"}
    assert cost("video-to-video-reframe", reframe) == 360  # unknown: 60 s
    assert cost("video-to-video-reframe", reframe, {"seconds": 2.5}) == 15


def test_input_note_only_for_the_billed_input() -> None:
    assert input_note("text-to-video", {"image_uri": video(1)}) is None
    assert input_note("retake", {}) is None
    note = input_note("retake", {"video_uri": video(3.0, 1080, 1920, 25)})
    assert note == {"seconds": 3.0, "width": 1080, "height": 1920, "fps": 25.0}


def test_table_fallbacks(tmp_path: Path) -> None:
    table = PriceTable(
        {
            "tiers": {"small": 1_000_000, "big": 9_000_000},
            "models": {"m": {"big": 2.5}},
            "default": {"small": 1},
        }
    )
    assert table.tier((1280, 720)) == "small" and table.tier((7680, 4320)) == "big"
    assert table.rate("text-to-video", "m", (640, 480)) == 2.5  # next larger tier
    assert table.rate("text-to-video", "unknown", (3840, 2160)) == 1  # default, its largest


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"tiers": {"a": 1}, "default": {"b": 1}},  # a tier the table does not have
        {"tiers": {"a": 1}, "default": {"a": -1}},
        {"tiers": {"a": "x"}, "default": {"a": 1}},
        {"tiers": {"a": 1}, "default": {}},
    ],
)
def test_malformed_table_is_a_config_error(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        PriceTable(data)
    assert info.value.setting == "LTXSERVE_CREDITS_PRICES_FILE"


def test_credits_setting_turns_the_policy_on(tmp_path: Path) -> None:
    """The limits are always checked (docs/limits.md); the credit hold joins them, last."""
    assert isinstance(admission_from_settings(Settings(data_dir=tmp_path)), Limits)
    policy = admission_from_settings(Settings(data_dir=tmp_path, credits=True))
    assert isinstance(policy, AllOf)
    assert [type(p) for p in policy.policies] == [Limits, CreditHold]


def test_a_bad_price_file_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"tiers": {"a": 1}}))
    env = {
        "LTXSERVE_CREDITS": "true",
        "LTXSERVE_CREDITS_PRICES_FILE": str(bad),
        "PATH": "/usr/bin:/bin",
    }
    for argv in (["worker", "--engine", "minimal"], ["serve", "--port", "1", "--workers", "0"]):
        out = subprocess.run(
            [sys.executable, "-m", "ltxserve.cli", *argv, "--data-dir", str(tmp_path / "d")],
            env={**env, "PYTHONPATH": ":".join(sys.path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 78, out
        assert "LTXSERVE_CREDITS_PRICES_FILE" in out.stderr and "docs/credits.md" in out.stderr
