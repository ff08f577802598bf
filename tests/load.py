"""A small HTTP/1.1 load driver on raw asyncio streams, for the concurrency test and bench.

httpx spends ~1 ms of CPU per request, which on a 2-core machine would make the
client, not the server, the thing measured; a keep-alive connection that writes
a prepared request and reads the status line and a Content-Length body costs a
few tens of microseconds. It speaks only what ltxserve answers (Content-Length
bodies, keep-alive), and that is all it needs to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson


@dataclass
class Outcome:
    kind: str  # submit | poll
    status: int  # 0: no answer within the timeout
    seconds: float
    body: bytes


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0

    def of(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    def statuses(self, kind: str | None = None) -> dict[int, int]:
        out: dict[int, int] = {}
        for o in self.outcomes:
            if kind is None or o.kind == kind:
                out[o.status] = out.get(o.status, 0) + 1
        return out

    def percentile(self, kind: str, p: float) -> float:
        times = sorted(o.seconds for o in self.of(kind))
        if not times:
            return 0.0
        return times[min(len(times) - 1, int(p / 100 * len(times)))]


def request_bytes(method: str, path: str, key: str, body: bytes | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def _connection(
    port: int, jobs: asyncio.Queue[tuple[str, bytes]], result: LoadResult, timeout: float
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        try:
            kind, raw = jobs.get_nowait()
        except asyncio.QueueEmpty:
            break
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            t0 = time.perf_counter()
            try:
                writer.write(raw)
                status, body, close = await asyncio.wait_for(_read_response(reader), timeout)
            except TimeoutError:  # recorded as status 0: no answer in time
                result.outcomes.append(Outcome(kind, 0, time.perf_counter() - t0, b""))
                writer.close()
                reader = writer = None
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                reader = writer = None
                if attempt == 2:
                    raise
                continue
            result.outcomes.append(Outcome(kind, status, time.perf_counter() - t0, body))
            if close:
                writer.close()
                reader = writer = None
            break
    if writer is not None:
        writer.close()


async def run_load(
    port: int, requests: list[tuple[str, bytes]], concurrency: int, timeout: float = 60.0
) -> LoadResult:
    """Send ``requests`` (kind, raw bytes) over ``concurrency`` keep-alive connections."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    result = LoadResult()
    t0 = time.perf_counter()
    await asyncio.gather(*(_connection(port, queue, result, timeout) for _ in range(concurrency)))
    result.wall = time.perf_counter() - t0
    return result


def mixed_requests(
    key: str,
    submits: int,
    polls: int,
    poll_ids: list[str],
    body: Callable[[int], dict[str, object]],
) -> list[tuple[str, bytes]]:
    """``submits`` POSTs and ``polls`` GETs over ``poll_ids``, interleaved evenly."""
    out: list[tuple[str, bytes]] = []
    every = max(1, (submits + polls) // max(1, submits))
    s = p = 0
    while s < submits or p < polls:
        if s < submits and (p >= polls or (s + p) % every == 0):
            out.append(
                ("submit", request_bytes("POST", "/v2/text-to-video", key, orjson.dumps(body(s))))
            )
            s += 1
        else:
            out.append(
                (
                    "poll",
                    request_bytes("GET", f"/v2/text-to-video/{poll_ids[p % len(poll_ids)]}", key),
                )
            )
            p += 1
    return out
