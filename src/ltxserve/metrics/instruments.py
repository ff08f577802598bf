"""The metrics ltxserve processes observe (names and labels: docs/operations.md).

Import only after ``multiproc.use_dir`` when several processes share a machine: the
objects below pick file-backed values at creation. Labels are bounded: endpoints
are the seven documented ones, engines a handful, routes are templates
(``/v2/{endpoint}/{job_id}``), never raw paths.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from ltxserve.jobs.store.base import Job, now_ms

# Generation takes seconds to many minutes; queue waits from milliseconds to hours.
JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

JOB_DURATION = Histogram(
    "ltxserve_job_duration_seconds",
    "Time a worker spent on a job, from its claim to its end (inputs, render, upload)",
    ["endpoint", "engine"],
    buckets=JOB_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "ltxserve_job_queue_wait_seconds",
    "Time a finished job waited between its submit and its first claim",
    ["endpoint", "engine"],
    buckets=WAIT_BUCKETS,
)
JOBS_FINISHED = Counter(
    "ltxserve_jobs_finished",
    "Jobs a worker ended, by outcome (completed or failed)",
    ["endpoint", "engine", "status"],
)
HTTP_DURATION = Histogram(
    "ltxserve_http_request_duration_seconds",
    "API request latency by route template, method and status code",
    ["method", "route", "code"],
)
WEBHOOK_DELIVERIES = Counter(
    "ltxserve_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered (the receiver answered 2xx) or failed "
    "(anything else; retried with backoff, docs/webhooks.md)",
    ["outcome"],
)
WEBHOOK_OUTCOMES = ("delivered", "failed")


def declare_webhooks() -> None:
    """Make the webhook series exist at zero, so dashboards and alerts can use them."""
    for outcome in WEBHOOK_OUTCOMES:
        WEBHOOK_DELIVERIES.labels(outcome=outcome)


def observe_job(job: Job, engine: str, status: str, seconds: float) -> None:
    """A worker ended ``job`` after ``seconds`` of its own work."""
    labels = {"endpoint": job.endpoint, "engine": engine or "unknown"}
    JOB_DURATION.labels(**labels).observe(max(seconds, 0.0))
    started = job.started_at if job.started_at is not None else now_ms()
    QUEUE_WAIT.labels(**labels).observe(max(started - job.created_at, 0) / 1000)
    JOBS_FINISHED.labels(status=status, **labels).inc()
