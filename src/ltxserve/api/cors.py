"""CORS for web apps on other origins (``LTXSERVE_CORS_ORIGINS``; none by default).

Starlette's CORSMiddleware does the Fetch-standard work. It sits outside
RequestContext, so every answer that middleware makes itself (413 from the body
limit, the 500 envelope) and every error envelope of the app carry the CORS
headers too: a page on an allowed origin can read a 400's message. Around it,
preflights get an ``x-request-id`` like every other response, and a refused
preflight answers in the documented error envelope instead of plain text (the
browser fails the request either way: the envelope has no CORS headers).
"""

from __future__ import annotations

import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ltxserve.api.errors import ltx_error_response
from ltxserve.errors import InvalidRequestError

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")  # DELETE: cancel (docs/api.md)
# Non-safelisted response headers a client needs: request ids for support, Retry-After
# for its backoff, range answers for media players, whether a submit was a replay of its
# Idempotency-Key.
EXPOSE = ("x-request-id", "retry-after", "content-range", "accept-ranges", "idempotent-replayed")


class Cors:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=["*"],
            expose_headers=EXPOSE,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.cors.preflight_response(request_headers=headers)
                if response.status_code != 200:
                    reason = bytes(response.body).decode(errors="replace")
                    response = ltx_error_response(
                        InvalidRequestError(f"{reason} (preflight refused)")
                    )
                rid = uuid.uuid4().hex

                async def with_id(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        MutableHeaders(scope=message)["x-request-id"] = rid
                    await send(message)

                await response(scope, receive, with_id)
                return
        await self.cors(scope, receive, send)
