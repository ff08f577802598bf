"""``ltx jobs list``: the key's jobs, newest first (``GET /v2/jobs``, an ltxserve extension).

One page by default (``--limit``, 20); ``--all`` follows ``next_cursor`` to the end,
and ``--cursor`` starts from a page a previous ``--json`` run printed. A human
listing is one job a line (id, endpoint, status, created_at); ``--json`` prints the
page as the server sent it (with ``--all``, every job under ``data``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from ltxserve.cli_flags import Command, Group
from ltxserve.client._cli_app import (
    OUTPUT,
    ApiKey,
    BaseUrl,
    Conn,
    Json,
    Retries,
    app,
    opt,
    reporting,
)
from ltxserve.client.types import JobStatus, ProcessingJob

jobs_app = typer.Typer(
    name="jobs",
    no_args_is_help=True,
    cls=Group,
    help="The key's jobs on an ltxserve server (GET /v2/jobs).",
)
app.add_typer(jobs_app, rich_help_panel="Jobs")

FILTERS = "Filters"


def _line(job: JobStatus) -> str:
    state: str = job.status
    if isinstance(job, ProcessingJob) and job.progress is not None:
        state += f" {job.progress:.0%}"
    return f"{job.id}  {job.endpoint or '-':<22}  {state:<15}  {job.created_at.isoformat()}"


@jobs_app.command("list", cls=Command)
def list_jobs(
    endpoint: Annotated[
        list[str] | None,
        opt("endpoint", "Only jobs of this endpoint (repeat for several)", panel=FILTERS),
    ] = None,
    status: Annotated[
        list[str] | None,
        opt(
            "status",
            "Only jobs in this state: pending, processing, completed, failed (repeatable)",
            panel=FILTERS,
        ),
    ] = None,
    created_after: Annotated[
        datetime | None,
        opt("created-after", "Only jobs created after this time (UTC)", panel=FILTERS),
    ] = None,
    created_before: Annotated[
        datetime | None,
        opt("created-before", "Only jobs created before this time (UTC)", panel=FILTERS),
    ] = None,
    limit: Annotated[int, opt("limit", "Jobs per page (1-100)", panel=OUTPUT)] = 20,
    all_pages: Annotated[
        bool, opt("all", "Follow the pages to the last job", panel=OUTPUT)
    ] = False,
    cursor: Annotated[
        str | None, opt("cursor", "Start at this next_cursor of an earlier page", panel=OUTPUT)
    ] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """List the key's jobs, newest first."""
    conn = Conn(base_url, api_key, max_retries, json_out)
    with reporting(conn.json) as ui, conn.client() as client:
        filters: dict[str, Any] = dict(
            endpoint=endpoint or None,
            status=status or None,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
        )
        page = client.jobs.list(**filters, cursor=cursor)
        found = list(page.data)
        while all_pages and page.has_more and page.next_cursor:
            page = client.jobs.list(**filters, cursor=page.next_cursor)
            found += page.data
        payload = {
            "data": [job.to_dict() for job in found],
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
        human = "\n".join(_line(job) for job in found) or "no jobs"
        if page.has_more and not all_pages:
            human += f"\n(more: --cursor {page.next_cursor}, or --all)"
        ui.result(payload, human)
