"""The ``ltx`` typer app: shared options, the job flow, and the non-endpoint commands.

Options shared by every command are ``Annotated`` aliases defined once here, so
their names, help and environment variables cannot drift between commands. The
seven endpoint commands live in ``_cli_endpoints`` and all use ``run_job``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from ltxserve import __version__
from ltxserve.cli_flags import Command, Group
from ltxserve.client._base import local_file
from ltxserve.client._cli_ui import Reporter
from ltxserve.client._exceptions import ConfigurationError as ConfigError
from ltxserve.client._exceptions import LtxError, WaitTimeoutError
from ltxserve.client._sync import Client
from ltxserve.client.types import (
    CompletedJob,
    EndpointName,
    FailedJob,
    JobStatus,
    ProcessingJob,
    RequestModel,
)

app = typer.Typer(
    name="ltx",
    no_args_is_help=True,
    add_completion=False,
    cls=Group,
    help="The LTX Video API from the shell: generate, poll, download, upload.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

REQUEST, OUTPUT, CONNECTION = "Request", "Waiting and output", "Connection"


def envvar(option: str) -> str:
    """The environment variable of an option: ``--image-uri`` -> ``LTX_IMAGE_URI``."""
    return "LTX_" + option.lstrip("-").upper().replace("-", "_")


def opt(name: str, help: str, *decls: str, panel: str = REQUEST, **kw: Any) -> Any:
    """A typer option named ``--name`` that also reads ``LTX_NAME``."""
    return typer.Option(
        f"--{name}",
        *decls,
        envvar=kw.pop("env", envvar(name)),
        help=help.replace("[", "\\["),  # "[default: x]" is not rich markup
        rich_help_panel=panel,
        **kw,
    )


# Options every command shares.
BaseUrl = Annotated[
    str | None,
    opt(
        "base-url",
        "API base URL [default: https://api.ltx.video]",
        panel=CONNECTION,
        show_default=False,
    ),
]
ApiKey = Annotated[
    str | None,
    opt(
        "api-key",
        "API key (sent as a Bearer token)",
        panel=CONNECTION,
        env="LTXV_API_KEY",
        show_default=False,
    ),
]
Retries = Annotated[
    int, opt("max-retries", "Retries on 429/500/503 and network errors", panel=CONNECTION)
]
Json = Annotated[bool, opt("json", "Print one JSON object on stdout, no progress", panel=OUTPUT)]
# Options of commands that wait for a job.
Output = Annotated[
    Path | None,
    opt(
        "output",
        "File or directory to write [default: <id>.mp4]",
        "-o",
        panel=OUTPUT,
        show_default=False,
    ),
]
NoWait = Annotated[bool, opt("no-wait", "Submit only; print the job id", panel=OUTPUT)]
Poll = Annotated[
    float,
    opt(
        "poll-interval",
        "Longest wait between status polls, in seconds, on a server without live "
        "events (polls start 0.5 s apart and back off to this; every second "
        "while the server reports progress)",
        panel=OUTPUT,
    ),
]
Timeout = Annotated[
    float, opt("timeout", "Give up waiting after this many seconds (0: never)", panel=OUTPUT)
]
Sync = Annotated[
    bool,
    opt(
        "sync",
        "Use the synchronous /v1 endpoint: one request answered "
        "with the video, no job id, no polling; the file defaults to "
        "<endpoint>-<UTC time>.mp4",
        panel=OUTPUT,
    ),
]


AUTO: Any = object()
"""Stands for an explicit ``null`` in ``fields`` (``--duration auto``)."""


@dataclass(frozen=True)
class Conn:
    """The connection options of one command (None: the environment or the default)."""

    base_url: str | None
    api_key: str | None
    max_retries: int
    json: bool

    def client(self) -> Client:
        if not self.api_key:  # the SDK's message names its own api_key=, not our option
            raise ConfigError("no API key: pass --api-key or set LTXV_API_KEY")
        return Client(api_key=self.api_key, base_url=self.base_url, max_retries=self.max_retries)


@dataclass(frozen=True)
class Wait:
    """How an endpoint command waits for its job and where the result goes."""

    output: Path | None
    no_wait: bool
    poll_interval: float
    timeout: float
    sync: bool = False  # POST /v1/{endpoint} instead of submit + wait + download


@contextmanager
def reporting(json_mode: bool) -> Iterator[Reporter]:
    """Run a command body; turn the errors it may meet into the documented exit codes."""
    with Reporter(json_mode=json_mode) as ui:
        try:
            yield ui
        except (LtxError, ValidationError, OSError) as exc:  # OSError: local file trouble
            raise typer.Exit(ui.error(exc)) from None
        except KeyboardInterrupt:
            ui.err.print("interrupted (a submitted job keeps running on the server)")
            raise typer.Exit(130) from None


def describe(job: JobStatus) -> str:
    """A short human summary of a job object, one ``key: value`` per line."""
    state: str = job.status
    if isinstance(job, ProcessingJob) and job.progress is not None:
        state += f" ({job.progress:.0%})"
    lines = [f"id: {job.id}", f"status: {state}", f"created_at: {job.created_at.isoformat()}"]
    if isinstance(job, CompletedJob | FailedJob):
        lines.append(f"completed_at: {job.completed_at.isoformat()}")
    if isinstance(job, CompletedJob):
        lines += [f"{label}: {url}" for label, url in job.result.items()]
    if isinstance(job, FailedJob):
        lines.append(f"error: {job.error.type}: {job.error.message}")
    return "\n".join(lines)


def run_job(model: type[RequestModel], fields: dict[str, Any], conn: Conn, wait: Wait) -> None:
    """Upload local inputs, submit, wait with progress, download: one endpoint command.

    ``fields`` holds every request option; ``None`` means "not given" and is left
    out, so the server applies its defaults. The one field that can be sent as
    null (``duration`` of ``--duration auto``) arrives as ``AUTO``.
    """
    endpoint = model.endpoint
    if wait.sync and wait.no_wait:
        raise typer.BadParameter("a --sync call always waits", param_hint="--no-wait")
    with reporting(conn.json) as ui, conn.client() as client:
        given = {k: (None if v is AUTO else v) for k, v in fields.items() if v is not None}
        request = model(**given)
        uploads: dict[str, str] = {}
        for name, value in request.uri_fields().items():
            path = local_file(value)
            if path is not None:
                ui.step(f"uploading {path}")
                uploads[name] = client.upload(path).storage_uri
        if uploads:
            request = request.model_copy(update=uploads)
        if wait.sync:
            ui.step(f"generating {endpoint} in one request (/v1)")
            path = client.generate_sync(
                request,
                output=wait.output,
                timeout=wait.timeout or None,
                on_progress=ui.on_download,
            )
            ui.result({"endpoint": endpoint, "output": str(path)}, str(path))
            return
        ui.step(f"submitting {endpoint}")
        job = client.submit(request)
        ui.note(f"{endpoint} job {job.id}")
        if wait.no_wait:
            ui.result({"endpoint": endpoint, "job": job.to_dict()}, job.id)
            return
        final = client.wait(
            endpoint,
            job.id,
            poll_interval=wait.poll_interval,
            timeout=wait.timeout or None,
            on_status=ui.on_status,
        )
        done = final.raise_for_status()
        path = client.download(done, wait.output, on_progress=ui.on_download)
        ui.result({"endpoint": endpoint, "job": done.to_dict(), "output": str(path)}, str(path))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version")] = False,
) -> None:
    if version:
        typer.echo(f"ltx (ltxserve {__version__})")
        raise typer.Exit()


Endpoint = Annotated[EndpointName, typer.Argument(help="The endpoint the job was submitted to")]
JobId = Annotated[str, typer.Argument(help="The job id the submit returned")]


@app.command(rich_help_panel="Jobs", cls=Command)
def status(
    endpoint: Endpoint,
    job_id: JobId,
    wait: Annotated[
        bool,
        opt(
            "wait",
            "Wait until the job completes or fails: live events from an ltxserve "
            "server, polling elsewhere",
            panel=OUTPUT,
        ),
    ] = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Show a job's status object. With --wait, a failed job exits with its error's code."""
    conn = Conn(base_url, api_key, max_retries, json_out)
    with reporting(conn.json) as ui, conn.client() as client:
        if wait:
            job: JobStatus = client.wait(
                endpoint,
                job_id,
                poll_interval=poll_interval,
                timeout=timeout or None,
                on_status=ui.on_status,
            )
            job.raise_for_status()
        else:
            job = client.get(endpoint, job_id)
        ui.result({"endpoint": endpoint, "job": job.to_dict()}, describe(job))


@app.command(rich_help_panel="Jobs", cls=Command)
def cancel(
    endpoint: Endpoint,
    job_id: JobId,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Cancel a pending or running job (an ltxserve extension) and show it, now failed
    with cancelled_error. A job that already ended exits 3 (409)."""
    conn = Conn(base_url, api_key, max_retries, json_out)
    with reporting(conn.json) as ui, conn.client() as client:
        job = client.cancel(endpoint, job_id)
        ui.result({"endpoint": endpoint, "job": job.to_dict()}, describe(job))


@app.command(rich_help_panel="Jobs", cls=Command)
def download(
    endpoint: Endpoint,
    job_id: JobId,
    output: Output = None,
    label: Annotated[
        str | None,
        opt("label", "Result to fetch [default: video_url, else exr_frames_url]", panel=OUTPUT),
    ] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Download the result of a completed job."""
    conn = Conn(base_url, api_key, max_retries, json_out)
    with reporting(conn.json) as ui, conn.client() as client:
        job = client.get(endpoint, job_id).raise_for_status()
        if not isinstance(job, CompletedJob):
            raise WaitTimeoutError(f"job {job_id} is still {job.status}", job=job)
        path = client.download(job, output, label=label, on_progress=ui.on_download)
        ui.result({"endpoint": endpoint, "job": job.to_dict(), "output": str(path)}, str(path))


@app.command(rich_help_panel="Jobs", cls=Command)
def upload(
    file: Annotated[
        Path,
        typer.Argument(
            help="Local file to upload (image, video or audio)",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Upload a file; prints the storage_uri to pass as any --*-uri value for 24 h."""
    conn = Conn(base_url, api_key, max_retries, json_out)
    with reporting(conn.json) as ui, conn.client() as client:
        ui.step(f"uploading {file}")
        ticket = client.upload(file)
        ui.result(ticket.to_dict(), ticket.storage_uri)
