"""``GET /v2/jobs``: the calling key's jobs, newest first, a page at a time.

An additive extension (docs/api.md, "Listing jobs"). Query parameters:
``endpoint`` and ``status`` (each repeatable or comma-separated: any of them),
``created_after`` / ``created_before`` (ISO 8601, exclusive), ``limit`` (1-100,
default 20) and ``cursor`` (the previous page's ``next_cursor``, with the same
filters). Each item is the job's status object, as ``GET /v2/{endpoint}/{id}``
answers it, plus its ``endpoint``. Jobs of other keys, and jobs past retention,
are never listed.

The cursor is opaque to clients: the (created_at, id) of the page's last job,
base64url. Pages are a keyset (jobs/store/listing.py), so jobs submitted while a
client pages through never make it see a job twice or miss one.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from ltxserve.api.deps import Blobs, Config, Keys, Manager, base_url, run_store
from ltxserve.api.errors import JSONBytes
from ltxserve.api.status import status_body
from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.wire_numbers import parse_uint

router = APIRouter()

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
PARAMS = frozenset({"endpoint", "status", "created_after", "created_before", "limit", "cursor"})
_JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def encode_cursor(created_at: int, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}.{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    created, _, job_id = raw.partition(".")
    created_at = parse_uint(created)
    if created_at is None or not _JOB_ID.fullmatch(job_id):
        raise InvalidRequestError("cursor is not a next_cursor this server gave out")
    return created_at, job_id


def _choices(request: Request, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",")]
    for value in values:
        if value not in allowed:
            raise InvalidRequestError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return tuple(dict.fromkeys(values))


def _time(request: Request, name: str) -> int | None:
    """An ISO 8601 instant (UTC unless it names an offset) as epoch milliseconds."""
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _limit(request: Request) -> int:
    value = request.query_params.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    limit = parse_uint(value, max_digits=3)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


@router.get("/v2/jobs")
async def list_jobs(
    request: Request, manager: Manager, keys: Keys, settings: Config, blobs: Blobs
) -> Response:
    key_id = await keys.key_id(request.headers.get("authorization"))
    unknown = sorted(set(request.query_params) - PARAMS)
    if unknown:
        raise InvalidRequestError(
            f"unknown query parameter {unknown[0]!r}; known: {', '.join(sorted(PARAMS))}"
        )
    cursor = request.query_params.get("cursor")
    statuses = _choices(request, "status", tuple(s.value for s in JobStatus))
    page = await run_store(
        manager,
        manager.list_jobs,
        key_id,
        limit=_limit(request),
        endpoints=_choices(request, "endpoint", ENDPOINTS),
        statuses=tuple(JobStatus(s) for s in statuses),
        created_after=_time(request, "created_after"),
        created_before=_time(request, "created_before"),
        after=decode_cursor(cursor) if cursor is not None else None,
    )
    base = base_url(request, settings)
    data = [{**status_body(job, base, blobs), "endpoint": job.endpoint} for job in page.jobs]
    last = page.jobs[-1] if page.jobs and page.more else None
    return JSONBytes(
        {
            "data": data,
            "has_more": page.more,
            "next_cursor": encode_cursor(last.created_at, last.id) if last else None,
        }
    )
