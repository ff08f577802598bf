"""Reading a live event stream (GET /v2/{endpoint}/{id}/events) in tests, by hand:
the tests must see the wire exactly, comments and ``retry`` included."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    id: str | None
    event: str
    data: dict[str, Any]
    received: float = field(default_factory=time.time)  # wall clock: compared to completed_at


def frames(resp: httpx.Response) -> Iterator[Event | str]:
    """Events, and each comment line as ``":<text>"`` (keep-alives)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in resp.iter_lines():
        if line == "":
            if data:
                yield Event(
                    fields.get("id"), fields.get("event", "message"), json.loads("\n".join(data))
                )
            fields, data = {}, []
        elif line.startswith(":"):
            yield line
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


def events(
    client: httpx.Client, endpoint: str, job_id: str, last_event_id: str | None = None
) -> list[Event]:
    """Every event of one connection, to the stream's end."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with client.stream("GET", f"/v2/{endpoint}/{job_id}/events", headers=headers) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [f for f in frames(resp) if isinstance(f, Event)]


def streams_open(base_url: str) -> float:
    """``ltxserve_event_streams`` from /metrics."""
    for line in httpx.get(f"{base_url}/metrics").text.splitlines():
        if line.startswith("ltxserve_event_streams "):
            return float(line.split()[1])
    raise AssertionError("ltxserve_event_streams missing from /metrics")
