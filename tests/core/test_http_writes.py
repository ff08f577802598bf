"""The API's HTTP protocol writes a response of known length in one piece.

uvicorn's own protocol writes the head as the app starts a response and the body
after it: two sends, and on loopback two passes through the receiver's TCP path and
two wake-ups of the client. ltxserve's protocol (api/protocol.py) holds the head for
the body. Where a response's bytes split into writes is not observable on a real
socket (the kernel may merge or split them either way), so the protocol here runs
over a transport that records each write: uvicorn's real protocol and response
cycle, a real Starlette app, and everything above the socket as served.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from ltxserve.api.protocol import header_deadline_protocol


class Recording(asyncio.Transport):
    """A transport that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _json(_request: Any) -> JSONResponse:
    return JSONResponse({"status": "pending", "id": "x" * 40}, status_code=202)


async def _stream(_request: Any) -> StreamingResponse:
    async def chunks() -> Any:
        yield b"data: one\n\n"
        yield b"data: two\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


APP = Starlette(routes=[Route("/json", _json, methods=["GET", "HEAD"]), Route("/stream", _stream)])


def _serve(request: bytes) -> list[bytes]:
    async def run() -> list[bytes]:
        config = uvicorn.Config(APP, http=header_deadline_protocol(15), log_config=None)
        config.load()
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}
        )
        transport = Recording()
        protocol.connection_made(transport)
        protocol.data_received(request)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if protocol.cycle is not None and protocol.cycle.response_complete:
                break
        assert protocol.cycle is not None and protocol.cycle.response_complete
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(run())


def test_a_json_answer_is_one_write() -> None:
    writes = _serve(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
    assert len(writes) == 1, writes
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert body == b'{"status":"pending","id":"' + b"x" * 40 + b'"}'
    assert head.startswith(b"HTTP/1.1 202") and b"content-length: %d" % len(body) in head


def test_a_head_request_and_a_stream_send_their_head_at_once() -> None:
    """HEAD has no body to wait for; a stream's head must not wait for its first event."""
    writes = _serve(b"HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n")
    assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\n"), writes
    writes = _serve(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
    assert writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(b"\r\n\r\n"), writes
    assert b"".join(writes[1:]).count(b"data: ") == 2
