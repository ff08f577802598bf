"""Content policy (docs/limits.md#content-policy): what a prompt or an input may not be.

A policy is an object with either or both of two checks, each answering True
for "filtered":

- ``check_prompt(endpoint, prompt)`` runs at submit, in the API, before any
  input is fetched and outside the database transaction: a filtered prompt
  answers 422 ``content_filtered_error`` and makes no job;
- ``check_inputs(endpoint, request, inputs)`` runs in the worker once the job's
  inputs are local files (``inputs``: request field -> path): a filtered job
  ends ``failed`` with error type ``content_filtered_error``. A classifier that
  wants images or audio has them there, and the API never waits on it.

``LTXSERVE_CONTENT_POLICY`` picks it: ``terms`` (default: ``TermList`` over
``LTXSERVE_CONTENT_TERMS`` and ``LTXSERVE_CONTENT_TERMS_FILE``; no terms, no
policy), ``none``, the name of an entry point of the group
``ltxserve.content_policy``, or ``module:attribute``. The entry point (or
attribute) is a factory called with the ``Settings``, e.g. a class.
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import ahocorasick

from ltxserve.config import ConfigError, Settings
from ltxserve.errors import ApiError, ContentFilteredError

log = logging.getLogger(__name__)

GROUP = "ltxserve.content_policy"
MESSAGE = "Content is filtered due to policy restrictions"
DOC = "docs/limits.md#content-policy"

_SPACES = re.compile(r"\s+")

# Scripts written without spaces between words: a term in one of them matches
# anywhere (there is no word boundary to find), and a letter of one of them next
# to a term of a spaced script counts as a boundary ("これはbadです").
_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility jamo, Katakana ext.
    (0x3400, 0x4DBF),  # CJK ext. A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables: particles attach to words
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK ext. B and beyond
)


def unspaced(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _UNSPACED)


def word_char(ch: str) -> bool:
    """A letter, mark or digit of a script that separates its words (or "_")."""
    return (unicodedata.category(ch)[0] in "LMN" or ch == "_") and not unspaced(ch)


def normalize(text: str) -> str:
    """NFKC (full-width and compatibility forms fold to plain ones), case-folded,
    every run of white space one space: linear, and the same for terms and prompts."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


class TermList:
    """Case-insensitive whole-word matching of a term list, linear in the prompt.

    One Aho-Corasick automaton finds every occurrence of every term in one pass;
    an occurrence counts when each end of it is a boundary: the text's edge, a
    character that is not a word character, or a letter of a script written
    without spaces. A term's end that is itself such a letter (Chinese, Japanese,
    Thai, Korean...) needs no boundary, since those scripts have none.
    """

    def __init__(self, terms: list[str]) -> None:
        self.automaton = ahocorasick.Automaton()
        self.count = 0
        for term in terms:
            norm = normalize(term)
            if norm and self.automaton.add_word(norm, norm):
                self.count += 1
        if self.count:
            self.automaton.make_automaton()

    def __bool__(self) -> bool:
        return self.count > 0

    def check_prompt(self, endpoint: str, prompt: str) -> bool:
        if not self.count or not prompt:
            return False
        text = normalize(prompt)
        for end, term in self.automaton.iter(text):
            start = end - len(term) + 1
            if word_char(term[0]) and start > 0 and word_char(text[start - 1]):
                continue
            if word_char(term[-1]) and end + 1 < len(text) and word_char(text[end + 1]):
                continue
            return True
        return False


def read_terms(settings: Settings) -> list[str]:
    """The inline terms and the file's lines (blank lines and "#" comments skipped)."""
    terms = list(settings.content_terms)
    path = settings.content_terms_file
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"the content policy's term file {path} cannot be read: {exc}",
                setting="LTXSERVE_CONTENT_TERMS_FILE",
                doc=DOC,
            ) from exc
        terms += [t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#")]
    return terms


def _factory(name: str) -> Callable[[Settings], Any]:
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"content policy {name!r} cannot be loaded: {exc}",
                setting="LTXSERVE_CONTENT_POLICY",
                doc=DOC,
            ) from exc
        return obj  # type: ignore[no-any-return]
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise ConfigError(
            f"no content policy named {name!r}: not 'terms' or 'none', no entry point of "
            f"the group {GROUP}, not module:attribute",
            setting="LTXSERVE_CONTENT_POLICY",
            doc=DOC,
        )
    try:
        return found[0].load()  # type: ignore[no-any-return]
    except Exception as exc:  # an installed package that does not import
        raise ConfigError(
            f"content policy {name!r} cannot be loaded: {exc}",
            setting="LTXSERVE_CONTENT_POLICY",
            doc=DOC,
        ) from exc


class ContentPolicy:
    """The deployment's policy, whichever it is, behind the two checks the server calls.

    A classifier that raises is a failure of ours, not the client's: the submit
    answers api_error (500) and the job fails with api_error, never admitted unchecked.
    """

    def __init__(self, impl: Any, name: str) -> None:
        self.name = name
        self.inline = isinstance(impl, TermList)  # microseconds: no thread hop in the API
        self.prompt_check = getattr(impl, "check_prompt", None)
        self.inputs_check = getattr(impl, "check_inputs", None)

    @property
    def needs_inputs(self) -> bool:
        return self.inputs_check is not None

    def check_prompt(self, endpoint: str, request: Mapping[str, Any]) -> None:
        """Raise ContentFilteredError (422) when the request's prompt is filtered."""
        prompt = request.get("prompt")
        if self.prompt_check is None or not isinstance(prompt, str) or not prompt:
            return
        if self._ask(self.prompt_check, endpoint, prompt):
            raise ContentFilteredError(MESSAGE)

    def check_inputs(
        self, endpoint: str, request: Mapping[str, Any], inputs: Mapping[str, Path]
    ) -> None:
        """Raise ContentFilteredError when the job's inputs are filtered (worker)."""
        if self.inputs_check is not None and self._ask(
            self.inputs_check, endpoint, request, inputs
        ):
            raise ContentFilteredError(MESSAGE)

    def _ask(self, check: Callable[..., Any], *args: Any) -> bool:
        try:
            return bool(check(*args))
        except Exception as exc:
            log.exception("content policy %s failed", self.name)
            raise ApiError("the content policy could not check this request") from exc


_LOADED: dict[tuple[Any, ...], ContentPolicy | None] = {}


def load_policy(settings: Settings) -> ContentPolicy | None:
    """The policy the settings name, or None (nothing to check). ConfigError when the
    name or the term file cannot work: serve and worker stop at start with one line.

    Loaded once per process and settings (serve checks it before the app loads it)."""
    key = (settings.content_policy, tuple(settings.content_terms), settings.content_terms_file)
    if key not in _LOADED:
        _LOADED[key] = _load(settings)
    return _LOADED[key]


def _load(settings: Settings) -> ContentPolicy | None:
    name = settings.content_policy.strip()
    if name in ("", "none"):
        return None
    if name == "terms":
        terms = TermList(read_terms(settings))
        return ContentPolicy(terms, f"terms ({terms.count})") if terms else None
    factory = _factory(name)
    try:
        impl = factory(settings)
    except Exception as exc:
        raise ConfigError(
            f"content policy {name!r} failed to start: {exc}",
            setting="LTXSERVE_CONTENT_POLICY",
            doc=DOC,
        ) from exc
    if not (hasattr(impl, "check_prompt") or hasattr(impl, "check_inputs")):
        raise ConfigError(
            f"content policy {name!r} has neither check_prompt nor check_inputs",
            setting="LTXSERVE_CONTENT_POLICY",
            doc=DOC,
        )
    return ContentPolicy(impl, name)
