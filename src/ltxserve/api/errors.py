"""Domain errors -> the documented error envelope. The only place that knows the status codes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ltxserve.errors import LtxError

STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "insufficient_funds_error": 402,
    "not_found_error": 404,
    "request_too_large": 413,
    "content_filtered_error": 422,
    "rate_limit_error": 429,
    "concurrency_limit_error": 429,
    "api_error": 500,
    "service_unavailable": 503,
}


def envelope(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


def error_response(
    type_: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        envelope(type_, message),
        status_code=status or STATUS.get(type_, 500),
        media_type="application/json",
        headers=headers,
    )


def ltx_error_response(exc: LtxError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.type, exc.message, headers=headers)


class JSONBytes(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(orjson.dumps(content), status_code=status_code)
