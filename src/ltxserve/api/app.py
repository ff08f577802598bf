"""create_app: wire settings, the job manager, storage and routes into one ASGI app.

State that several API processes must agree on lives in the database and blob
store; ``ApiDeps`` (api/deps.py) holds only handles and caches, which routes
receive typed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ltxserve import __version__
from ltxserve.api import (
    credits,
    docs,
    events,
    files,
    health,
    listing,
    metrics,
    routes,
    uploads,
    v1,
    webhooks,
)
from ltxserve.api.cors import Cors
from ltxserve.api.deps import ApiDeps, KeyResolver
from ltxserve.api.errors import (
    JSONBytes,
    http_exception_response,
    ltx_error_response,
)
from ltxserve.api.event_hub import EventHub
from ltxserve.api.middleware import RequestContext
from ltxserve.api.web import router as web_router
from ltxserve.config import Settings
from ltxserve.errors import (
    InvalidRequestError,
    LtxError,
    MethodNotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
    StoreBusyError,
)
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.jobs.lifecycle.manager import JobManager, open_manager
from ltxserve.keys import KeyChecker
from ltxserve.metrics.instruments import declare_webhooks
from ltxserve.storage.base import StorageError
from ltxserve.webhooks.dispatcher import Dispatcher

log = logging.getLogger("ltxserve.api")


def make_deps(settings: Settings, manager: JobManager | None = None) -> ApiDeps:
    """The handles routes are given; ``manager`` for a test's own (e.g. in-memory) one."""
    if manager is None:
        manager = open_manager(settings, catalog=Catalog.load(settings.models_file))
    return ApiDeps(
        settings=settings,
        manager=manager,
        blobs=manager.blobs,
        keys=KeyResolver(KeyChecker(manager.store, settings.key_cache_seconds), manager),
        signing_key=settings.signing_key(),
    )


class Sweeper(threading.Thread):
    """Retention and lost-job housekeeping in the API process, every sweep_interval."""

    def __init__(self, manager: JobManager, interval: float) -> None:
        super().__init__(name="ltxserve-sweeper", daemon=True)
        self.manager = manager
        self.interval = interval
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.manager.sweep()
            except StoreBusyError:
                log.warning("sweep skipped: the job store is busy")
            except Exception:  # noqa: BLE001 - keep sweeping; the next pass retries
                log.exception("sweep failed")


def create_app(settings: Settings | None = None, *, manager: JobManager | None = None) -> FastAPI:
    settings = settings or Settings()
    deps = make_deps(settings, manager)
    hub = EventHub(deps.manager, settings.events_poll_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = Sweeper(deps.manager, settings.sweep_interval)
        sweeper.start()
        # webhook deliveries (docs/webhooks.md): durable rows, so any API process sends
        hooks = Dispatcher(deps.manager, settings) if settings.webhook_concurrency > 0 else None
        if hooks is not None:
            hooks.start()
        try:
            yield
        finally:
            sweeper.stop_event.set()
            if hooks is not None:
                hooks.stop()
            hub.close()
            await deps.manager.aclose()  # the event loop's own connections (pg_async.py)

    app = FastAPI(
        title="ltxserve",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # ltxserve's metrics are Prometheus' (/metrics); FastAPI's own OpenTelemetry
        # hooks asked the OpenTelemetry API for its providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.deps = deps
    app.state.events = hub  # live event streams; closed first at shutdown (cli.py)
    app.state.metrics_registry = metrics.metrics_registry(
        deps.manager, settings.metrics_cache_seconds
    )
    declare_webhooks()

    @app.exception_handler(LtxError)
    async def _ltx_error(_request: Request, exc: LtxError) -> Response:
        return ltx_error_response(exc)

    @app.exception_handler(StorageError)
    async def _storage_error(_request: Request, exc: StorageError) -> Response:
        # The blob store failed (S3 unreachable, refusing): the server's trouble, for
        # the client to retry, and never a traceback.
        log.warning("blob store: %s", exc)
        return ltx_error_response(ServiceUnavailableError("Blob storage is unavailable"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return ltx_error_response(NotFoundError(f"No route for {request.url.path}"))
        if exc.status_code == 405:
            return ltx_error_response(
                MethodNotAllowedError(
                    f"Method {request.method} is not allowed on {request.url.path}",
                    allow=(exc.headers or {}).get("Allow"),
                )
            )
        return http_exception_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return ltx_error_response(InvalidRequestError(str(exc.errors()[0].get("msg"))))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONBytes({"status": "ok"})

    app.include_router(routes.router)
    app.include_router(webhooks.router)
    app.add_route("/v2/{endpoint}/{job_id}/events", events.get_events, methods=["GET"])
    app.include_router(listing.router)
    app.include_router(files.router)
    app.include_router(uploads.router)
    app.include_router(v1.router)
    app.include_router(web_router)
    app.include_router(docs.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(credits.router)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.HttpMetrics)  # outside RequestContext: its 413/500 count too
    if settings.cors_origins:  # outside RequestContext: its own 413/500 answers get CORS too
        app.add_middleware(Cors, origins=settings.cors_origins)
    return app
