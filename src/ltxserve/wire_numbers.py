"""Numbers from request text (query strings, headers): ASCII digits only, bounded length.

``str.isdigit()`` is the wrong test for that: it is true for superscripts and
other Unicode digits that ``int()`` then refuses ('²'), and ``int()`` refuses
(or spends quadratic time on) strings of thousands of digits. Both used to turn a
hostile query string into a 500 with a traceback (issue 17, item 5). Everything
that turns request text into a number goes through here instead.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(rb"[0-9]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_uint(text: str | bytes | None, max_digits: int = 19) -> int | None:
    """The value of 1..``max_digits`` ASCII digits (nothing else, not even spaces), or None."""
    if text is None:
        return None
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if not 0 < len(raw) <= max_digits or not _DIGITS.fullmatch(raw):
        return None
    return int(raw)


def is_hex_digest(text: str | None) -> bool:
    """True for exactly 64 lowercase ASCII hex digits (an HMAC-SHA256 hexdigest)."""
    return text is not None and _HEX64.fullmatch(text) is not None
