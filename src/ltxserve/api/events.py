"""GET /v2/{endpoint}/{id}/events: a job's status as Server-Sent Events (additive extension).

The same key, endpoint and retention rules as the status poll (404 otherwise), then
``text/event-stream``:

    retry: 2000                    once: how long a client waits before reconnecting

    id: 3                          the job's version (jobs.version)
    event: status
    data: {...}                    the status object GET /v2/{endpoint}/{id} answers

    : keep-alive                   a comment every LTXSERVE_EVENTS_KEEPALIVE_SECONDS

One ``status`` event for the state at connect, one per change of status or progress
after it, the terminal object last, then the stream ends. An event's id is the
job's version, which every status or progress write bumps (migration 0007),
so ids only grow: a client reconnecting with ``Last-Event-ID: n`` is sent the
current state if the version moved past n, and nothing it already has. What it
missed in between collapses into the newest state: a status object is a snapshot,
not a delta. The stream also ends when the job is deleted (retention) and when the
API process shuts down; a client reconnects or falls back to polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ltxserve.api.deps import api_deps, base_url
from ltxserve.api.event_hub import EventHub, Subscription
from ltxserve.api.status import status_body
from ltxserve.errors import NotFoundError
from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.store.base import JobView
from ltxserve.wire_numbers import parse_uint

log = logging.getLogger("ltxserve.api")
RETRY = b"retry: 2000\n\n"
KEEPALIVE = b": keep-alive\n\n"
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


def event(view: JobView, body: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: status\ndata: %s\n\n" % (view.version, orjson.dumps(body))


def last_event_id(request: Request) -> int | None:
    """The client's ``Last-Event-ID`` (an id of ours is a non-negative integer; anything
    else counts as none: the client is sent the current state)."""
    return parse_uint(request.headers.get("last-event-id"))


async def stream(
    sub: Subscription,
    view: JobView,
    last: int | None,
    render: Callable[[JobView], dict[str, Any]],
    keepalive: float,
) -> AsyncGenerator[bytes, None]:
    yield RETRY
    if last is None or view.version != last:
        yield event(view, render(view))
    if view.terminal:
        return
    while True:
        try:
            await asyncio.wait_for(sub.event.wait(), keepalive)
        except TimeoutError:
            if sub.gone:
                return
            yield KEEPALIVE
            continue
        newer = sub.take()
        if newer is not None:
            yield event(newer, render(newer))
            if newer.terminal:
                return
        if sub.gone:
            return


class EventStream(StreamingResponse):
    """The stream, unsubscribed however it ends: the job ended, the client hung up
    (Starlette cancels the response mid-wait), the server shut down."""

    def __init__(
        self, hub: EventHub, sub: Subscription, events: AsyncGenerator[bytes, None]
    ) -> None:
        super().__init__(events, media_type="text/event-stream", headers=HEADERS)
        self.hub = hub
        self.sub = sub
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.unsubscribe(self.sub)
            with contextlib.suppress(Exception):
                await self.events.aclose()


async def get_events(request: Request) -> Response:
    deps = api_deps(request)
    hub = request.app.state.events
    assert isinstance(hub, EventHub)
    endpoint, job_id = request.path_params["endpoint"], request.path_params["job_id"]
    key_id = await deps.keys.key_id(request.headers.get("authorization"))
    if endpoint not in ENDPOINTS:
        raise NotFoundError(f"Job {job_id} not found")
    view = await deps.manager.aget(key_id, endpoint, job_id)
    base = base_url(request, deps.settings)

    def render(v: JobView) -> dict[str, Any]:
        return status_body(v, base, deps.blobs)

    sub = hub.subscribe(view.id, view.version)
    keepalive = deps.settings.events_keepalive_seconds
    return EventStream(hub, sub, stream(sub, view, last_event_id(request), render, keepalive))
