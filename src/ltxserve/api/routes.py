"""The documented v2 operations: seven submits and the status poll."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ltxserve import simulate
from ltxserve.api.deps import KeyResolver, Keys, Manager, api_deps, base_url, run_store
from ltxserve.api.errors import JSONBytes
from ltxserve.api.input_check import check_inputs
from ltxserve.api.status import iso_ms, status_body
from ltxserve.errors import InvalidRequestError, NotFoundError
from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.lifecycle.pricing import input_note
from ltxserve.jobs.store.base import Job
from ltxserve.logs import job_id_var
from ltxserve.webhooks.callback import NOTE as WEBHOOK_NOTE
from ltxserve.webhooks.callback import note as webhook_note

router = APIRouter()
log = logging.getLogger("ltxserve.api")


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


async def create_job(
    request: Request, endpoint: str, manager: JobManager, keys: KeyResolver
) -> Job:
    """Everything a submit does short of answering: shared by v2 and the v1 sync endpoints.

    Admission (limits; jobs/lifecycle/admission.py) runs inside ``manager.submit``'s
    insert transaction, not here, so two API processes cannot both admit past a limit."""
    key = await keys.info(request.headers.get("authorization"))
    key_id = key.key_id
    # client-testing mode (docs/simulate.md): only for keys that allow it
    sim = simulate.for_request(key.simulate, request.headers.get(simulate.HEADER))
    refusal = sim.submit_error() if sim else None
    if refusal is not None:
        raise refusal
    body = await read_json(request)
    validated = manager.validate(endpoint, body)
    if manager.content is not None:  # content policy (docs/limits.md): 422 before any fetch
        if manager.content.inline:
            manager.screen(endpoint, validated)
        else:
            await run_in_threadpool(manager.screen, endpoint, validated)
    part = sim.job_part() if sim else None
    if part is not None:
        validated["_simulate"] = part  # played by the runner, for every engine
    hook = webhook_note(
        manager.settings, body, key.webhook_url, base_url(request, manager.settings)
    )
    if hook is not None:
        validated[WEBHOOK_NOTE] = hook  # callback_url or the key's default (docs/webhooks.md)
    infos = await check_inputs(manager, key_id, endpoint, validated)
    if manager.settings.credits and (note := input_note(endpoint, infos)):
        validated["_input"] = note  # the input's length prices the job (docs/credits.md)
    job: Job = await run_in_threadpool(manager.submit, key_id, endpoint, validated)
    job_id_var.set(job.id)  # this request's later log records name the job
    log.info("job %s (%s) submitted", job.id, endpoint)
    return job


async def submit(
    request: Request, endpoint: str, manager: JobManager, keys: KeyResolver
) -> Response:
    job = await create_job(request, endpoint, manager, keys)
    return JSONBytes({"id": job.id, "created_at": iso_ms(job.created_at)}, status_code=202)


def _make_submit(endpoint: str) -> Any:
    async def handler(request: Request, manager: Manager, keys: Keys) -> Response:
        return await submit(request, endpoint, manager, keys)

    handler.__name__ = f"submit_{endpoint.replace('-', '_')}"
    return handler


async def get_status(request: Request) -> Response:
    """The poll: a plain Starlette route, because FastAPI's parameter machinery
    would double the cost of the hottest request (bench/bench_poll.py)."""
    deps = api_deps(request)
    endpoint, job_id = request.path_params["endpoint"], request.path_params["job_id"]
    key_id = await deps.keys.key_id(request.headers.get("authorization"))
    if endpoint not in ENDPOINTS:
        raise NotFoundError(f"Job {job_id} not found")
    job = await run_store(deps.manager, deps.manager.get, key_id, endpoint, job_id)
    return JSONBytes(status_body(job, base_url(request, deps.settings), deps.blobs))


router.add_route("/v2/{endpoint}/{job_id}", get_status, methods=["GET"])

for _endpoint in ENDPOINTS:
    router.add_api_route(
        f"/v2/{_endpoint}", _make_submit(_endpoint), methods=["POST"], status_code=202
    )
