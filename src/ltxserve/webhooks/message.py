"""The event body: Standard Webhooks' ``type``/``timestamp``/``data`` envelope.

``data`` is the status object exactly as ``GET /v2/{endpoint}/{id}`` returns it
(result URLs from the blob store, pointing at the address the client submitted
to). It is rendered at the first attempt, from the job as it ended, and stored with
that attempt: every later attempt sends the same bytes. ``timestamp`` is the
job's end, not the attempt's (the attempt's time is in ``webhook-timestamp``).
"""

from __future__ import annotations

from typing import Any

import orjson

from ltxserve.api.status import iso_ms, status_body
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.store.base import Delivery


def render(manager: JobManager, d: Delivery) -> str:
    """The body of ``d``; NotFoundError when its job is past retention."""
    view = manager.get(d.api_key_id, d.endpoint, d.job_id)
    body: dict[str, Any] = {
        "type": d.event,
        "timestamp": iso_ms(view.completed_at or d.created_at),
        "endpoint": d.endpoint,
        "data": status_body(view, d.base_url, manager.blobs),
    }
    return orjson.dumps(body).decode()
