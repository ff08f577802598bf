"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request).

RequestContext: gives every response an ``x-request-id`` (the client's own when
it sent a well-formed one, so its logs and ours share the id; a fresh one
otherwise), puts it in the logging context (ltxserve.logs), enforces the body
size limit while the body streams, and turns any exception that escaped the app
into a 500 api_error envelope while logging the traceback with the request id.
The client never sees a traceback. A client that hung up
mid-request is logged as such, without a traceback and without an answer.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ltxserve.api.errors import envelope, status_of
from ltxserve.errors import ApiError, LtxError, RequestTooLargeError
from ltxserve.logs import key_id_var, request_id_var
from ltxserve.wire_numbers import parse_uint

log = logging.getLogger("ltxserve.api")
# A client's X-Request-Id is taken as is only when it cannot forge a log line or
# bloat one: up to 128 of these characters (a UUID, a trace id, a ULID...).
CLIENT_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and CLIENT_REQUEST_ID.fullmatch(value):
            return str(value.decode())
    return uuid.uuid4().hex


def _unlimited(scope: Scope) -> bool:
    """Upload PUTs stream to storage under their own, larger limit."""
    return bool(scope["method"] == "PUT" and scope["path"].startswith("/uploads/"))


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        request_id_var.set(rid)
        key_id_var.set(None)  # set once the request's key is checked
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        limit = None if _unlimited(scope) else self.max_body_bytes
        if limit is not None:
            for name, value in scope["headers"]:
                if name == b"content-length":
                    declared = parse_uint(value)
                    if declared is None or declared > limit:
                        await self._send_error(
                            send_wrapper,
                            RequestTooLargeError(f"Request body exceeds the {limit} byte limit"),
                        )
                        return
        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLargeError(f"Request body exceeds the {limit} byte limit")
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except ClientDisconnect:
            # The client went away mid-request (e.g. mid-body): nobody to answer, and
            # not an error of ours; no traceback (issue 17).
            log.info(
                "client disconnected during %s %s [request %s]", scope["method"], scope["path"], rid
            )
        except Exception:
            log.exception(
                "unhandled error in %s %s [request %s]", scope["method"], scope["path"], rid
            )
            if not started:
                await self._send_error(send_wrapper, ApiError("An unexpected error occurred"))

    @staticmethod
    async def _send_error(send: Any, error: LtxError) -> None:
        """Answer before (or outside) routing, from the same status table as the routes."""
        body = envelope(error.type, error.message)
        await send(
            {
                "type": "http.response.start",
                "status": status_of(error),
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
