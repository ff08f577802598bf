"""``GET /readyz``: can this API process serve requests now? (``/healthz``: is it up?)

Ready means the job store answers a trivial query and the blob store answers a
trivial check (``BlobStore.ping``), each within ``READY_TIMEOUT`` seconds. A load
balancer or Kubernetes readiness probe takes an instance out of rotation on 503
(``service_unavailable``, the documented envelope, naming what failed) and puts
it back once both answer again; the process itself keeps running, unlike a
failed liveness probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ltxserve.api.errors import JSONBytes
from ltxserve.errors import ServiceUnavailableError
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.storage.base import BlobStore

router = APIRouter()
log = logging.getLogger("ltxserve.api")
READY_TIMEOUT = 5.0


async def _check(name: str, fn: Callable[[], object]) -> str | None:
    """None when the check passed, else ``name``; the log says why (the answer does
    not: /readyz needs no key, and an error text can name hosts)."""
    try:
        await asyncio.wait_for(run_in_threadpool(fn), READY_TIMEOUT)
    except TimeoutError:
        log.warning("not ready: %s: no answer within %g s", name, READY_TIMEOUT)
        return name
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        log.warning("not ready: %s: %s: %s", name, type(exc).__name__, exc)
        return name
    return None


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    deps = request.app.state.deps
    manager: JobManager = deps.manager
    blobs: BlobStore = deps.blobs
    checks = await asyncio.gather(
        _check("database", manager.ping_store), _check("storage", blobs.ping)
    )
    problems = [p for p in checks if p is not None]
    if problems:
        raise ServiceUnavailableError(f"Not ready: {' and '.join(problems)} unreachable")
    return JSONBytes({"status": "ready", "checks": {"database": "ok", "storage": "ok"}})
