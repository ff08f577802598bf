"""``GET /metrics`` (Prometheus text format) and the HTTP latency it reports.

What a scrape shows (docs/operations.md):

- from every ltxserve process of this machine (multiprocess files, see
  ltxserve.metrics.multiproc): HTTP latency by route template, job duration and
  queue wait per endpoint and engine (observed by workers), jobs finished, webhook
  delivery attempts by outcome (counted by the delivery loop, docs/webhooks.md);
- from the database, at scrape time: ``ltxserve_jobs{state,endpoint}`` and
  ``ltxserve_queue_depth``. Grouped counts at most every ``metrics_cache_seconds``
  per API process (ended jobs less often: JobCounts), whatever the scrape rate, so
  many scrapers cannot load the store;
  an unreachable database gives ``ltxserve_database_up 0`` rather than a failed
  scrape.

No API key: like /healthz it is for the operator's network (docs/operations.md
says how to keep it there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.lifecycle.states import JobStatus
from ltxserve.metrics.instruments import HTTP_DURATION
from ltxserve.metrics.multiproc import scrape_registry

router = APIRouter()
log = logging.getLogger("ltxserve.api")


TERMINAL_EVERY = 12  # ended jobs are re-counted every 12th refresh (60 s by default)


class JobCounts:
    """Jobs by state and endpoint, read from the database at most every ``ttl`` s.

    Two queries, because their costs differ by the retained total: the jobs in
    flight (pending, processing: the queue, what alerts watch) are a range of the
    (status, created_at) index, as many rows as the backlog, and are re-read every
    ``ttl``; the ended ones (all retained jobs, a million at 10 jobs/s over 24 h)
    change slowly and are re-read every ``TERMINAL_EVERY * ttl``.
    """

    def __init__(self, manager: JobManager, ttl: float) -> None:
        self.manager = manager
        self.ttl = ttl
        self.lock = threading.Lock()  # concurrent scrapes share one query
        self.read_at = {True: float("-inf"), False: float("-inf")}  # by "in flight"
        self.counts: dict[bool, dict[tuple[str, str], int] | None] = {True: None, False: None}

    def _query(self, in_flight: bool) -> dict[tuple[str, str], int] | None:
        try:
            return self.manager.count_jobs(in_flight)
        except Exception:  # noqa: BLE001 - the scrape still answers, with database_up 0
            log.warning("metrics: job counts unavailable", exc_info=True)
            return None

    def get(self) -> dict[tuple[str, str], int] | None:
        with self.lock:
            now = time.monotonic()
            for in_flight, ttl in ((True, self.ttl), (False, self.ttl * TERMINAL_EVERY)):
                if now - self.read_at[in_flight] >= ttl or self.counts[in_flight] is None:
                    self.counts[in_flight] = self._query(in_flight)
                    self.read_at[in_flight] = time.monotonic()
            live, ended = self.counts[True], self.counts[False]
            return None if live is None or ended is None else {**live, **ended}

    def collect(self) -> Iterator[Metric]:
        counts = self.get()
        up = GaugeMetricFamily(
            "ltxserve_database_up", "1 when the last job count read from the database worked"
        )
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        by_state = GaugeMetricFamily(
            "ltxserve_jobs",
            "Jobs in the database (retained ones included) by state and endpoint",
            labels=["state", "endpoint"],
        )
        endpoints = sorted(set(ENDPOINTS) | {e for _, e in counts})
        for state in JobStatus:
            for endpoint in endpoints:
                by_state.add_metric([state.value, endpoint], counts.get((state.value, endpoint), 0))
        yield by_state
        depth = GaugeMetricFamily("ltxserve_queue_depth", "Jobs waiting for a worker (pending)")
        depth.add_metric([], sum(n for (s, _), n in counts.items() if s == JobStatus.PENDING))
        yield depth


def metrics_registry(manager: JobManager, ttl: float) -> CollectorRegistry:
    return scrape_registry(JobCounts(manager, ttl))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    body = await run_in_threadpool(generate_latest, registry)  # files and a query: off the loop
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _templates(routes: Iterable[Any]) -> Iterator[tuple[Any, str]]:
    """(endpoint, path template) of every route, included routers walked."""
    for route in routes:
        inner = getattr(route, "original_router", None) or (
            route if not hasattr(route, "endpoint") and hasattr(route, "routes") else None
        )
        if inner is not None:
            yield from _templates(inner.routes)
        elif hasattr(route, "endpoint"):
            yield route.endpoint, str(getattr(route, "path_format", None) or route.path)


class HttpMetrics:
    """Pure ASGI middleware: each HTTP request's latency by method, route and status code.

    The route is the matched route's template, so label values stay few whatever the
    paths: FastAPI routes leave themselves in ``scope["route"]``; plain Starlette
    routes (the status poll) leave only their endpoint function, looked up in a
    table of the app's routes made on the first request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates: dict[Any, str] | None = None

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template:
            return str(template)
        if self.templates is None:
            self.templates = dict(_templates(getattr(scope.get("app"), "routes", ())))
        return self.templates.get(scope.get("endpoint"), "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = "none"  # nothing answered (the server's own 500 follows)

        async def send_wrapper(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_DURATION.labels(method, self._route(scope), code).observe(
                time.perf_counter() - started
            )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
