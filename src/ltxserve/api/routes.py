"""The documented v2 operations: seven submits and the status poll."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ltxserve import simulate
from ltxserve.api.errors import JSONBytes
from ltxserve.api.input_check import check_inputs
from ltxserve.api.status import iso_ms, status_body
from ltxserve.errors import InvalidRequestError, NotFoundError
from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.store.sql import Job
from ltxserve.logs import job_id_var

router = APIRouter()
log = logging.getLogger("ltxserve.api")


def services(request: Request) -> Any:
    return request.app.state.services


async def authenticate(request: Request) -> str:
    svc = services(request)
    header = request.headers.get("authorization")
    key_id: str = await svc.check_key(header)
    return key_id


async def read_json(request: Request) -> Any:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise InvalidRequestError("Content-Type must be application/json")
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequestError("request body is empty; a JSON object is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None


def base_url(request: Request) -> str:
    configured = services(request).settings.public_url
    if configured:
        return str(configured).rstrip("/")
    return str(request.base_url).rstrip("/")


async def create_job(request: Request, endpoint: str) -> Job:
    """Everything a submit does short of answering: shared by v2 and the v1 sync endpoints."""
    svc = services(request)
    key = await svc.key_info(request.headers.get("authorization"))
    key_id = key.key_id
    # client-testing mode (docs/simulate.md): only for keys that allow it
    sim = simulate.for_request(key.simulate, request.headers.get(simulate.HEADER))
    refusal = sim.submit_error() if sim else None
    if refusal is not None:
        raise refusal
    body = await read_json(request)
    validated = svc.manager.validate(endpoint, body)
    part = sim.job_part() if sim else None
    if part is not None:
        validated["_simulate"] = part  # played by the runner, for every engine
    await check_inputs(svc, key_id, endpoint, validated)
    await svc.check_submit(key_id, endpoint, validated)
    job: Job = await run_in_threadpool(svc.manager.submit, key_id, endpoint, validated)
    job_id_var.set(job.id)  # this request's later log records name the job
    log.info("job %s (%s) submitted", job.id, endpoint)
    return job


async def submit(request: Request, endpoint: str) -> Response:
    job = await create_job(request, endpoint)
    return JSONBytes({"id": job.id, "created_at": iso_ms(job.created_at)}, status_code=202)


def _make_submit(endpoint: str) -> Any:
    async def handler(request: Request) -> Response:
        return await submit(request, endpoint)

    handler.__name__ = f"submit_{endpoint.replace('-', '_')}"
    return handler


async def get_status(request: Request) -> Response:
    """The poll: a plain Starlette route, because FastAPI's parameter machinery
    would double the cost of the hottest request (bench/bench_poll.py)."""
    svc = services(request)
    endpoint, job_id = request.path_params["endpoint"], request.path_params["job_id"]
    key_id = await authenticate(request)
    if endpoint not in ENDPOINTS:
        raise NotFoundError(f"Job {job_id} not found")
    job = await svc.run_db(svc.manager.get, key_id, endpoint, job_id)
    return JSONBytes(status_body(job, base_url(request), svc.blobs))


router.add_route("/v2/{endpoint}/{job_id}", get_status, methods=["GET"])

for _endpoint in ENDPOINTS:
    router.add_api_route(
        f"/v2/{_endpoint}", _make_submit(_endpoint), methods=["POST"], status_code=202
    )
