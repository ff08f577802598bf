"""Submit-time input checks, off the event loop: data and storage URIs get a 400 at once.

The work (base64 decode, Pillow/PyAV probe and demux) is blocking and can take a
CPU for a moment on large inputs, so it runs in worker threads, at most
``CHECK_CONCURRENCY`` at a time per API process.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from ltxserve.inputs import check_submit_inputs
from ltxserve.inputs.media import InputInfo
from ltxserve.jobs.contract.requests import URI_FIELDS
from ltxserve.jobs.lifecycle.manager import JobManager

CHECK_CONCURRENCY = 2
_limiter: list[anyio.CapacityLimiter] = []


def _get_limiter() -> anyio.CapacityLimiter:
    if not _limiter:
        _limiter.append(anyio.CapacityLimiter(CHECK_CONCURRENCY))
    return _limiter[0]


async def check_inputs(
    manager: JobManager, key_id: str, endpoint: str, request: dict[str, Any]
) -> dict[str, InputInfo]:
    """Raise InvalidRequestError for an input that breaks a rule; return what was learnt."""
    if not any(request.get(f) for f in URI_FIELDS):
        return {}
    fn = partial(
        check_submit_inputs,
        endpoint,
        request,
        settings=manager.settings,
        blobs=manager.blobs,
        uploads=manager.uploads.usable,
        api_key_id=key_id,
    )
    return await anyio.to_thread.run_sync(fn, limiter=_get_limiter())
