"""Live events (ltxserve's ``GET /v2/{endpoint}/{id}/events``): the parts without I/O.

The server streams a job's status objects as Server-Sent Events; the hosted API has
no such route. ``Client.events`` / ``AsyncClient.events`` (and so ``wait``, and the
CLI's ``--wait``) read the stream when the server has it and poll when it does not:
a 404 or 405 on the events route, while the job itself answers its status poll,
means "no events here", remembered for the client's lifetime. A stream that ends
before the job does (the API process shutting down) is reopened with
``Last-Event-ID``, so nothing is missed or repeated.

The wire format (WHATWG HTML, "Server-sent events") is parsed here by hand: the
server's events are three fields and comments, not worth a dependency in the
base install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

NO_EVENTS_STATUSES = frozenset({404, 405, 501})
"""Answers to the events route that may mean the server has none (hosted API)."""
STREAM_READ_TIMEOUT = 60.0
"""Longest silence on a stream before it is reopened (the server sends a keep-alive
comment every 15 s by default)."""


class NoEvents(Exception):
    """The server has no events route: poll instead."""


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class SseDecoder:
    """``text/event-stream`` lines in, events out (comments and ``retry`` dropped)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self.last_id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        if line == "":
            data, event = self._data, self._event
            self._data, self._event = [], ""
            if not data:
                return None
            return SseEvent(self.last_id, event or "message", "\n".join(data))
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None


def not_events(response: httpx.Response) -> bool:
    """The first answer of a server to the events route says it has none: a 404/405/501,
    or a success that is not an event stream (a proxy's page)."""
    if response.status_code in NO_EVENTS_STATUSES:
        return True
    ctype = response.headers.get("content-type", "")
    return response.is_success and ctype.split(";")[0].strip().lower() != "text/event-stream"


def stream_headers(last_id: str | None) -> dict[str, str]:
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return headers


def stream_timeout(base: float | httpx.Timeout, remaining: float | None) -> httpx.Timeout:
    """The client's timeouts with the read one set for a stream: the longest silence
    to sit through, cut to the time left before a ``wait`` gives up."""
    timeout = base if isinstance(base, httpx.Timeout) else httpx.Timeout(base)
    read = (
        STREAM_READ_TIMEOUT if remaining is None else max(0.01, min(STREAM_READ_TIMEOUT, remaining))
    )
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)
