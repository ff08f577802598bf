"""Item 2 of issue 17: pathological prompts. Proves: bounded time, correct layout.

The preview engine lays the prompt out as a caption before the first frame. The
old wrap re-measured shorter and shorter prefixes of a word too long for a line:
'a' x 4000 took 3 min 45 s with no progress report, and Chinese, Japanese and Thai
prompts (no spaces) are all one "word". Each case here runs the real engine and
bounds both the time to its first progress report and the longest gap between two.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import ImageFont

from ltxserve.config import Settings
from ltxserve.engines.dispatch import run_job
from ltxserve.engines.preview import PreviewEngine
from ltxserve.engines.preview.text import wrap
from tests.engines.preview_support import t2v_request

CHINESE = "一只橘猫在午后的阳光下蜷缩在窗台上睡觉旁边放着一盆绿萝和一本翻开的旧书" * 40
THAI = "แมวส้มนอนขดตัวอยู่บนขอบหน้าต่างท่ามกลางแสงแดดยามบ่ายข้างกระถางต้นไม้" * 40
PATHOLOGICAL = {
    "a_x4000": "a" * 4000,
    "a_x5000": "a" * 5000,  # the longest prompt the API accepts
    "chinese": CHINESE[:5000],
    "thai": THAI[:5000],
    "one_space_at_the_end": "b" * 4999 + " c",
}
# A loaded 2-core CI machine: generous, yet ~100x below the old cost.
FIRST_PROGRESS_CEILING = 5.0
GAP_CEILING = 5.0


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_engine_reports_progress_promptly_on_pathological_prompts(
    tmp_path: Path, name: str
) -> None:
    """Bounded time: first progress within 5 s, no 5 s without a progress report."""
    request = t2v_request(PATHOLOGICAL[name], resolution="1920x1080", duration=2)
    stamps: list[float] = []
    t0 = time.monotonic()
    run_job(
        PreviewEngine(Settings()),
        "p",
        "text-to-video",
        request,
        {},
        tmp_path,
        lambda _f: stamps.append(time.monotonic()),
    )
    assert stamps, "no progress reported"
    first = stamps[0] - t0
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert first < FIRST_PROGRESS_CEILING, first
    assert max(gaps, default=0.0) < GAP_CEILING, max(gaps)


FONT = ImageFont.load_default(size=40)


def _fits(lines: list[str], width: float) -> None:
    for line in lines:
        assert FONT.getlength(line) <= width, (line, FONT.getlength(line))


def test_wrap_breaks_chinese_between_characters() -> None:
    """Correct layout: a spaceless Chinese prompt fills its lines, all within the width."""
    lines = wrap(CHINESE[:30], FONT, 400)
    assert len(lines) >= 2 and "".join(lines) == CHINESE[:30]
    _fits(lines, 400)
    for line in lines[:-1]:  # greedy: each full line leaves less room than one character
        assert FONT.getlength(line) > 400 - FONT.getlength("猫")


def test_wrap_keeps_thai_marks_with_their_base() -> None:
    """Correct layout: Thai breaks between characters, never before a combining mark."""
    text = THAI[:60]
    lines = wrap(text, FONT, 300, max_lines=50)
    assert "".join(lines) == text and len(lines) >= 2
    _fits(lines, 300)
    import unicodedata

    for line in lines:
        assert unicodedata.category(line[0]) not in ("Mn", "Mc"), line


def test_wrap_still_breaks_at_spaces_and_ends_overflow_in_ellipsis() -> None:
    lines = wrap("the quick brown fox jumps over the lazy dog " * 10, FONT, 400)
    assert len(lines) == 3 and lines[-1].endswith("...")
    assert all(not line.startswith(" ") for line in lines)
    assert lines[0].split(" ")[-1] in (
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
    )  # whole words
    _fits(lines, 400)


def test_wrap_time_is_linear() -> None:
    """Bounded time: 5,000 characters without a space wrap in well under a second."""
    for text in ("a" * 5000, CHINESE[:5000], THAI[:5000]):
        t0 = time.perf_counter()
        lines = wrap(text, FONT, 1100)
        took = time.perf_counter() - t0
        assert took < 0.5, took
        assert len(lines) == 3 and lines[-1].endswith("...")
        _fits(lines, 1100)
