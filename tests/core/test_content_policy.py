"""The term list of the content policy (jobs/lifecycle/policy.py): whole words, any case,
scripts without spaces, linear time; and how a policy is named in the settings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ltxserve.config import ConfigError, Settings
from ltxserve.errors import ApiError, ContentFilteredError
from ltxserve.jobs.lifecycle.policy import MESSAGE, TermList, load_policy

TERMS = TermList(["gore", "Blood Bath", "暴力", "ばか", "ฆ่า", "x-rated", "C++"])


@pytest.mark.parametrize(
    "prompt",
    [
        "a GORE scene",
        "gore",
        "(gore)!",
        "Gore, then rain",
        "a blood   bath at dawn",  # white space runs are one space
        "a BLOOD\nBATH",
        "ＧＯＲＥ in full-width letters",  # NFKC folds them
        "这是暴力的场面",  # Chinese: no spaces, a term matches inside a run of text
        "あいつはばかだ",  # Japanese kana
        "これはgoreです",  # a Latin word between Japanese letters is a word
        "ฉากฆ่าคน",  # Thai
        "an x-rated film",
        "written in c++ today",
    ],
)
def test_filtered(prompt: str) -> None:
    assert TERMS.check_prompt("text-to-video", prompt), prompt


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "a gorge at sunset",  # a term inside a longer word is not the word
        "Gores",
        "engore",
        "gore_fest",  # "_" is part of a word
        "gore1",
        "a blood bathtub",
        "bloodbath",
        "x-ratedness",
        "暴",  # half a Chinese term
        "a calm lake",
    ],
)
def test_allowed(prompt: str) -> None:
    assert not TERMS.check_prompt("text-to-video", prompt), prompt


def test_time_is_linear_in_the_prompt() -> None:
    """One pass of one automaton: 10x the prompt costs about 10x, whatever the terms."""
    terms = TermList([f"term{i}" for i in range(20_000)] + ["a" * 50])
    small, large = "aaaa " * 5_000, "aaaa " * 50_000  # many partial matches of "a"*50

    def once(text: str) -> float:
        t0 = time.perf_counter()
        assert not terms.check_prompt("text-to-video", text)
        return time.perf_counter() - t0

    # the two sizes alternate, so a burst of load from the suite's other processes
    # falls on both; the best of each is its cost with the least interference
    best = {len(small): float("inf"), len(large): float("inf")}
    for _ in range(9):
        for text in (small, large):
            best[len(text)] = min(best[len(text)], once(text))
    ratio = best[len(large)] / best[len(small)]
    assert ratio < 40, ratio  # ~10-20 here (allocation, caches); quadratic would be ~100


def test_settings_inline_and_file(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    path.write_text("# banned\n\n  dragon fire \nkraken\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path, content_terms="wyvern, griffin", content_terms_file=path)
    policy = load_policy(settings)
    assert policy is not None and policy.inline and not policy.needs_inputs
    for prompt in ("a Wyvern", "griffin", "DRAGON FIRE", "the kraken"):
        with pytest.raises(ContentFilteredError) as refused:
            policy.check_prompt("text-to-video", {"prompt": prompt})
        assert refused.value.message == MESSAGE
    policy.check_prompt("text-to-video", {"prompt": "banned dragon"})  # comments are not terms
    policy.check_prompt("video-to-video-hdr", {"video_uri": "x"})  # no prompt, nothing to check


def test_no_terms_no_policy(tmp_path: Path) -> None:
    assert load_policy(Settings(data_dir=tmp_path)) is None
    assert load_policy(Settings(data_dir=tmp_path, content_policy="none")) is None


@pytest.mark.parametrize(
    "settings",
    [
        {"content_policy": "no-such-policy"},
        {"content_policy": "no_such_module:Policy"},
        {"content_policy": "ltxserve.errors:NoSuchName"},
        {"content_terms_file": "/nonexistent/terms.txt"},
    ],
)
def test_a_policy_that_cannot_load_is_a_config_error(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as err:
        load_policy(Settings(data_dir=tmp_path, **settings))  # type: ignore[arg-type]
    assert "LTXSERVE_CONTENT_" in err.value.line()


class Crashes:
    def __init__(self, settings: Settings) -> None:
        pass

    def check_prompt(self, endpoint: str, prompt: str) -> bool:
        raise RuntimeError("model not loaded")


def test_a_classifier_that_raises_is_our_failure_not_an_admission(tmp_path: Path) -> None:
    policy = load_policy(
        Settings(data_dir=tmp_path, content_policy=f"{__name__}:Crashes")  # dotted path
    )
    assert policy is not None and not policy.inline
    with pytest.raises(ApiError):
        policy.check_prompt("text-to-video", {"prompt": "anything"})
