"""Submit side: which URL a job's terminal event goes to, kept as a note on the job.

``callback_url`` is an additive request field on every submit (the contract's
request schemas do not forbid other properties, and the server has always ignored
unknown fields); without it the key's default (``ltxserve keys webhook``) applies,
as it was at submit. The URL passes the static part of the inputs' SSRF guard now
(scheme, host form, port: a 400 the client can act on); where it resolves to is
checked on every attempt (sender.py), so a refused address becomes a failed
delivery, never a failed submit.

The note ``_webhook`` (``{"url", "base_url"}``) is a server note like ``_simulate``:
kept with the job's request, never passed to an engine. ``base_url`` is the address
the client used, so the result URLs in the event are the ones a poll would give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ltxserve.config import Settings
from ltxserve.errors import InvalidRequestError
from ltxserve.inputs.fetch import FetchPolicy, FetchRefused, check_url
from ltxserve.jobs.store.base import WEBHOOK_NOTE

FIELD = "callback_url"
NOTE = WEBHOOK_NOTE  # the server note on the job (jobs/store/base.py)
MAX_URL = 2048


def check_target(url: Any, settings: Settings, field: str = FIELD) -> str:
    """``url`` if it may be a webhook target by its form, else InvalidRequestError."""
    if not isinstance(url, str):
        raise InvalidRequestError(f"{field} must be a string")
    if len(url) > MAX_URL:
        raise InvalidRequestError(f"{field} must be at most {MAX_URL} characters")
    try:
        check_url(url, FetchPolicy.from_settings(settings))
    except FetchRefused as exc:
        raise InvalidRequestError(f"{field} is refused as a webhook target: {exc}") from None
    return url


def note(
    settings: Settings, body: Any, key_default: str | None, base_url: Callable[[], str]
) -> dict[str, str] | None:
    """The job's webhook note, or None when neither the request nor the key asks for one.
    ``base_url`` is called only for a note: building it from the request cost 3% of a
    plain submit's API time (bench/README.md)."""
    given = body.get(FIELD) if isinstance(body, dict) else None
    if given is None:
        if not key_default:
            return None
        url = key_default  # checked when it was set; the sender checks it again
    else:
        url = check_target(given, settings)
    return {"url": url, "base_url": base_url()}
