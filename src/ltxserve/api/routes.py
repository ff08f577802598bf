"""The documented v2 operations (seven submits and the status poll) and the cancel
extension (``DELETE`` on a job's status path, docs/api.md "Cancel")."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ltxserve import simulate
from ltxserve.api.deps import KeyResolver, api_deps, base_url, to_thread
from ltxserve.api.errors import JSONBytes
from ltxserve.api.input_check import check_inputs
from ltxserve.api.status import iso_ms, status_body
from ltxserve.errors import InvalidRequestError, NotFoundError
from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.lifecycle import idempotency
from ltxserve.jobs.lifecycle.manager import IdempotencyKey, JobManager, Submission
from ltxserve.jobs.lifecycle.pricing import input_note
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


REPLAYED_HEADER = "Idempotent-Replayed"


async def create_job(
    request: Request, endpoint: str, manager: JobManager, keys: KeyResolver
) -> Submission:
    """Everything a submit does short of answering: shared by v2 and the v1 sync endpoints.

    Admission (limits; jobs/lifecycle/admission.py) and the Idempotency-Key lookup
    (jobs/lifecycle/idempotency.py) run inside ``manager.submit_once``'s insert
    transaction, not here, so two API processes cannot both admit past a limit or
    both make a job for one key."""
    key = await keys.info(request.headers.get("authorization"))
    idem_key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
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
            await to_thread(manager.screen, endpoint, validated)
    part = sim.job_part() if sim else None
    if part is not None:
        validated["_simulate"] = part  # played by the runner, for every engine
    hook = webhook_note(
        manager.settings, body, key.webhook_url, lambda: base_url(request, manager.settings)
    )
    if hook is not None:
        validated[WEBHOOK_NOTE] = hook  # callback_url or the key's default (docs/webhooks.md)
    infos = await check_inputs(manager, key_id, endpoint, validated)
    if manager.settings.credits and (note := input_note(endpoint, infos)):
        validated["_input"] = note  # the input's length prices the job (docs/credits.md)
    once = None
    if idem_key is not None:
        once = IdempotencyKey(idem_key, idempotency.request_hash(request.url.path, body))
    # on the event loop where the store can (PostgreSQL, no read first), else in a thread
    made = await manager.asubmit(key_id, endpoint, validated) if once is None else None
    if made is None:
        made = await to_thread(manager.submit_once, key_id, endpoint, validated, once)
    job_id_var.set(made.job.id)  # this request's later log records name the job
    if made.replayed:
        log.info("job %s (%s) replayed for its Idempotency-Key", made.job.id, endpoint)
    else:
        log.info("job %s (%s) submitted", made.job.id, endpoint)
    return made


async def submit(
    request: Request, endpoint: str, manager: JobManager, keys: KeyResolver
) -> Response:
    made = await create_job(request, endpoint, manager, keys)
    job = made.job
    response = JSONBytes({"id": job.id, "created_at": iso_ms(job.created_at)}, status_code=202)
    if made.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


def _make_submit(endpoint: str) -> Any:
    """A plain Starlette route, like the poll (bench/bench_poll.py measured FastAPI's
    parameter machinery there): the handler needs nothing from it but the app's
    dependencies, which ``api_deps`` hands over without a resolver per request."""

    async def handler(request: Request) -> Response:
        deps = api_deps(request)
        return await submit(request, endpoint, deps.manager, deps.keys)

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
    job = await deps.manager.aget(key_id, endpoint, job_id)
    return JSONBytes(status_body(job, base_url(request, deps.settings), deps.blobs))


async def cancel_job(request: Request) -> Response:
    """``DELETE /v2/{endpoint}/{id}``: the same key, endpoint and retention rules as the
    poll; answers the ended job's status object (``JobManager.cancel``)."""
    deps = api_deps(request)
    endpoint, job_id = request.path_params["endpoint"], request.path_params["job_id"]
    key_id = await deps.keys.key_id(request.headers.get("authorization"))
    if endpoint not in ENDPOINTS:
        raise NotFoundError(f"Job {job_id} not found")
    job_id_var.set(job_id)
    # a write: always off the event loop (SQLite's write lock may be held)
    job = await to_thread(deps.manager.cancel, key_id, endpoint, job_id)
    return JSONBytes(status_body(job, base_url(request, deps.settings), deps.blobs))


async def job_item(request: Request) -> Response:
    """One route for the job's path, so a wrong method's 405 lists both (``Allow``)."""
    if request.method == "DELETE":
        return await cancel_job(request)
    return await get_status(request)


router.add_route("/v2/{endpoint}/{job_id}", job_item, methods=["GET", "DELETE"])

for _endpoint in ENDPOINTS:
    router.add_route(f"/v2/{_endpoint}", _make_submit(_endpoint), methods=["POST"])
