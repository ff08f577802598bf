"""uvicorn's HTTP protocol with a deadline on request headers (slow-client defence).

uvicorn (0.55) times out only an idle keep-alive connection: a client that opens
a connection and sends its headers a byte at a time, or nothing at all, holds a
socket and a slot for as long as it likes (issue 17). This subclass of uvicorn's
httptools protocol arms a timer when a connection opens and when a request's
first byte arrives, disarms it when the headers are complete, and when it fires
answers 408 request_timeout and closes the connection. Bodies are not covered:
a slow body is bounded by the routes that read it (size limits; the upload PUT
streams to disk).

The deadline is ``LTXSERVE_HEADER_TIMEOUT_SECONDS`` (default 15).

The same protocol sends a response of known length (``content-length``: every
JSON answer) in one write, head and body together (``_WholeResponse``); uvicorn
writes the head as the app starts the response and the body after. On loopback each
write is a send that runs the receiver's whole TCP path and wakes it: the first of
the two was ~13 % of the API's samples under a stream of submits (bench/README.md,
"sixth pass"), and the client woke twice per answer. A streamed response (events,
chunked) keeps its head going out at once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ltxserve.api.errors import envelope, status_of
from ltxserve.errors import RequestTimeoutError


def _timeout_response() -> bytes:
    error = RequestTimeoutError("Request headers were not received in time")
    status = HTTPStatus(status_of(error))
    body = envelope(error.type, error.message)
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
        + b"content-type: application/json\r\nconnection: close\r\n"
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class _WholeResponse:
    """The transport as one response cycle sees it: when ``hold`` is set, the next
    write (the head) waits to go out with the one after it (the body's first piece)."""

    __slots__ = ("_transport", "_head", "hold")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self.hold = False

    def write(self, data: bytes) -> None:
        if self.hold:
            self.hold = False
            self._head = data
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:  # close, is_closing...: the transport's
        return getattr(self._transport, name)


def _send_whole(cycle: Any) -> None:
    """Have ``cycle`` (uvicorn's RequestResponseCycle) write a response of known length
    in one piece. Not for HEAD: uvicorn writes no body to go with the head."""
    if cycle.scope["method"] == "HEAD":
        return
    transport = _WholeResponse(cycle.transport)
    send = cycle.send

    async def send_whole(message: Any) -> None:
        if message["type"] == "http.response.start" and any(
            name.lower() == b"content-length" for name, _ in message.get("headers", ())
        ):
            transport.hold = True
        await send(message)

    cycle.transport = transport
    cycle.send = send_whole


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout: float = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_timeout_response())
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # not an upgrade (which makes no cycle)
            _send_whole(self.cycle)


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to hand uvicorn (``http=``), with its deadline set."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": float(seconds)}
    )


class DrainingServer(uvicorn.Server):
    """uvicorn's server, calling ``before_drain`` as shutdown begins.

    uvicorn's drain waits for every in-flight response, and a live event stream
    (api/events.py) would run until its job ends or the grace period cuts it. The
    hook ends those streams at once (their clients reconnect elsewhere or poll),
    so a SIGTERM waits only for the requests that finish by themselves.
    """

    def __init__(self, config: uvicorn.Config, before_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.before_drain = before_drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.before_drain()
        await super().shutdown(sockets)
