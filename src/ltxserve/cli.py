"""The ``ltxserve`` command: serve, worker, migrate, keys."""

from __future__ import annotations

import logging
import math
import os
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ltxserve.cli_credits import add_credit_commands
from ltxserve.cli_flags import Command, Group
from ltxserve.config import EX_CONFIG, ConfigError, Settings, default_data_dir

if TYPE_CHECKING:
    from ltxserve.jobs.store.sql import JobStore

app = typer.Typer(
    help="ltxserve: a self-hosted server for the LTX Video API.",
    no_args_is_help=True,
    add_completion=False,
    cls=Group,
)
keys_app = typer.Typer(
    help="Create, list and revoke API keys; their webhooks and credits (top-up, show, history).",
    no_args_is_help=True,
    cls=Group,
)
app.add_typer(keys_app, name="keys")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (SQLite file, blobs unless LTXSERVE_STORAGE_URL, secret). "
        "Default: $LTXSERVE_DATA_DIR or ~/.local/share/ltxserve.",
        show_default=False,
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        help="debug | info | warning | error. Default: $LTXSERVE_LOG_LEVEL, else "
        "warning for serve (and its workers), info for worker.",
        show_default=False,
    ),
]

# What `serve` says about the engine it runs, so nobody mistakes a preview for a model.
ENGINE_NOTES = {
    "preview": " (CPU preview: procedural pictures, not a generative model; "
    "docs/preview-engine.md)",
    "minimal": " (test pattern, not a generative model)",
}


def _config_exit(exc: ConfigError, who: str) -> NoReturn:
    """One line naming the setting and the doc, then exit EX_CONFIG: no retry can help."""
    typer.echo(f"ltxserve {who}: {exc.line()}", err=True)
    raise typer.Exit(EX_CONFIG)


def _settings(data_dir: Path | None) -> Settings:
    from pydantic import ValidationError

    try:
        if data_dir is not None:
            os.environ["LTXSERVE_DATA_DIR"] = str(data_dir.resolve())
            return Settings(data_dir=data_dir.resolve())
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "LTXSERVE_" + "_".join(str(part) for part in err["loc"][:1]).upper()
        raise ConfigError(f"{name}: {err['msg']}", setting=name) from exc


def _open_store(data_dir: Path | None, who: str) -> JobStore:
    """The store of the keys commands; a setting that cannot work is one line, exit 78."""
    from ltxserve.jobs.store.db import open_store

    try:
        return open_store(_settings(data_dir))
    except ConfigError as exc:
        _config_exit(exc, who)


def _logging(level: str | None, settings: Settings, default: str) -> str:
    """Configure logging; returns the level name, which workers of `serve` inherit
    (with the format, text or json: docs/operations.md)."""
    from ltxserve import logs

    name = (level or settings.log_level or default).upper()
    if not isinstance(logging.getLevelName(name), int):
        raise ConfigError(
            f"unknown log level {name.lower()!r}; use debug, info, warning or error",
            setting="--log-level / LTXSERVE_LOG_LEVEL",
        )
    try:
        fmt = logs.check_format(settings.log_format)
    except ValueError as exc:
        raise ConfigError(str(exc), setting="LTXSERVE_LOG_FORMAT") from exc
    os.environ["LTXSERVE_LOG_FORMAT"] = fmt  # workers and runners log the same way
    logs.configure(name, fmt)
    return name.lower()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM/SIGINT end `serve` through its ``finally``, which stops the workers.

    uvicorn restores the handler it found and raises the signal again once it has
    shut down; with Python's default SIGTERM action the process would die on the
    spot, leaving its workers orphaned. This handler is what it finds.
    """
    raise SystemExit(128 + signum)


def _check_content_policy(settings: Settings) -> None:
    """Load the content policy now (docs/limits.md): a bad name or term file is one
    line and exit 78 at start, not a failure of every submit."""
    from ltxserve.jobs.lifecycle.policy import load_policy

    load_policy(settings)


def _key_hint(data_dir: Path) -> str:
    flag = "" if data_dir == default_data_dir() else f" --data-dir {data_dir}"
    return f"ltxserve keys create{flag}"


@app.command(cls=Command)
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data_dir: DataDir = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes to run beside the API (0: API only). "
            "Default: $LTXSERVE_WORKERS or 1."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="auto | preview | minimal | ltx. Default: $LTXSERVE_ENGINE or auto."),
    ] = None,
    log_level: LogLevel = None,
) -> None:
    """Run the API and its workers on embedded defaults (SQLite + local files).

    Prints the URL, the engine, the workers and a key (or how to make one); a
    setting that cannot work stops it at once with one line (exit status 78).
    """
    try:
        settings = _settings(data_dir)
        settings.check_shared()
        level = _logging(log_level, settings, "warning")
        os.environ["LTXSERVE_LOG_LEVEL"] = level  # the workers log at the same level
        if engine:
            os.environ["LTXSERVE_ENGINE"] = engine
            settings.engine = engine
        n_workers = settings.workers if workers is None else workers
        _check_content_policy(settings)
        if n_workers:
            from ltxserve.engines import check_engine

            settings.engine = check_engine(settings.engine, settings)  # the API reports it
    except ConfigError as exc:
        _config_exit(exc, "serve")
    from ltxserve.metrics.multiproc import use_dir

    use_dir(settings.data_dir, clean=True)  # before any metric exists; workers inherit it
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    _serve(settings, host, port, n_workers, level)


def _serve(settings: Settings, host: str, port: int, n_workers: int, level: str) -> None:
    import uvicorn

    from ltxserve import __version__
    from ltxserve.api.app import create_app
    from ltxserve.api.protocol import DrainingServer, header_deadline_protocol
    from ltxserve.jobs.store.db import open_store
    from ltxserve.keys import create_key
    from ltxserve.supervisor import Supervisor

    try:
        store = open_store(settings)  # LTXSERVE_MIGRATE=never: refuses a schema behind
    except ConfigError as exc:
        _config_exit(exc, "serve")
    typer.echo(f"ltxserve {__version__} on http://{host}:{port}/ (API and playground)")
    if n_workers:
        typer.echo(
            f"engine: {settings.engine}{ENGINE_NOTES.get(settings.engine, '')}; "
            f"workers: {n_workers}"
        )
    else:
        typer.echo("workers: 0 (API only: run `ltxserve worker` on the same database)")
    keys = store.list_keys()
    if not keys:
        typer.echo(f"API key (shown once): {create_key(store, 'default')}")
    else:
        active = sum(1 for k in keys if k["revoked_at"] is None)
        typer.echo(
            f"API keys: {active} active (shown only when made); "
            f"make one with `{_key_hint(settings.data_dir)}`"
        )
    supervisor = Supervisor(
        n_workers,
        settings.data_dir,
        settings.engine,
        on_fatal=lambda: os.kill(os.getpid(), signal.SIGTERM),
    )
    if n_workers:
        supervisor.start()
    code: int | str | None = 0
    try:
        api = create_app(settings)
        config = uvicorn.Config(
            api,
            host=host,
            port=port,
            log_level=level,
            log_config=None,  # uvicorn's records go through ours (ltxserve.logs: text or json)
            access_log=False,
            http=header_deadline_protocol(settings.header_timeout_seconds),
            # SIGTERM: stop accepting, let in-flight requests finish (docs/operations.md)
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        )
        server = DrainingServer(config, before_drain=api.state.events.close)
        server.run()
        if not server.started:  # the port was taken: uvicorn logged why
            code = 3
    except SystemExit as exc:  # SIGTERM/SIGINT, by way of _exit_on_signal
        code = exc.code
    finally:
        # A second signal must not cut the workers' stop short (at most its grace).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        supervisor.stop()
    if supervisor.fatal:  # the worker printed the line that says why
        raise typer.Exit(EX_CONFIG)
    if code:
        raise typer.Exit(code if isinstance(code, int) else 1)


@app.command(cls=Command)
def worker(
    data_dir: DataDir = None,
    engine: Annotated[str, typer.Option(help="auto | preview | minimal | ltx.")] = "auto",
    log_level: LogLevel = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's Prometheus metrics on this port, for a worker on a "
            "machine without an API process. Default: $LTXSERVE_WORKER_METRICS_PORT, else off "
            "(the API of the same machine reports them).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Jobs this process runs at once, each in a slot with a runner and an engine "
            "of its own (so N copies of the model in memory). Default: "
            "$LTXSERVE_WORKER_CONCURRENCY, else 1.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run one worker: claim jobs from the store and generate them.

    A setting that cannot work stops it at once with one line (exit status 78).
    """
    from ltxserve.engines import check_engine
    from ltxserve.metrics.multiproc import use_dir

    try:
        settings = _settings(data_dir)
        if concurrency is not None:
            settings = settings.model_copy(update={"worker_concurrency": concurrency})
        settings.check_shared()
        os.environ["LTXSERVE_LOG_LEVEL"] = _logging(log_level, settings, "info")  # the runner's
        name = check_engine(engine if engine != "auto" else settings.engine, settings)
        _check_content_policy(settings)
    except ConfigError as exc:
        _config_exit(exc, "worker")
    use_dir(settings.data_dir)  # before ltxserve.worker makes its metrics
    from ltxserve.worker import RunnerStartFailed, run_worker

    try:
        run_worker(settings, name, metrics_port or settings.worker_metrics_port)
    except ConfigError as exc:  # LTXSERVE_MIGRATE=never and a schema behind the code
        _config_exit(exc, "worker")
    except RunnerStartFailed as exc:
        typer.echo(
            f"ltxserve worker: {exc}"
            if exc.config
            else f"ltxserve worker: the {name} engine failed to load: {exc}",
            err=True,
        )
        raise typer.Exit(EX_CONFIG if exc.config else 1) from None


@app.command("migrate", cls=Command)
def migrate_cmd(data_dir: DataDir = None) -> None:
    """Bring the database schema up to this release, then exit.

    Run it once per deploy, before API processes and workers that run
    with LTXSERVE_MIGRATE=never start (docs/deployment.md). Running it
    again, or from two places at once, is safe: upgrades queue on a lock.
    Exit status 0 when the schema is at this release's head (or newer),
    1 when the database cannot be reached or an upgrade fails, 78 on a
    setting that cannot work.
    """
    from dataclasses import replace

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from ltxserve.jobs.store.db import migrate, open_store, schema_state

    try:
        settings = _settings(data_dir)
        _logging(None, settings, "warning")
    except ConfigError as exc:
        _config_exit(exc, "migrate")
    store = None
    try:
        url = make_url(settings.db_url).render_as_string(hide_password=True)
        typer.echo(f"database: {url}")
        store = open_store(settings, run_migrations=False)
        before = schema_state(store)
        if before.ahead:
            typer.echo(
                f"schema: at {before.describe()}, newer than this release's head "
                f"{before.head}; nothing to do"
            )
        else:
            found = migrate(store)  # read under the lock: another upgrade may just have run
            if found == (before.head,):
                typer.echo(f"schema: at {before.head} (head); nothing to do")
            else:
                after = schema_state(store)
                was = replace(before, current=found).describe()
                typer.echo(f"schema: {was} -> {after.describe()} (head)")
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        typer.echo(f"ltxserve migrate: failed: {reason}", err=True)
        raise typer.Exit(1) from None
    finally:
        if store is not None:
            store.engine.dispose()


@keys_app.command("create", cls=Command)
def keys_create(
    data_dir: DataDir = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    simulate: Annotated[
        str | None,
        typer.Option(
            help="Make a client-testing key (docs/simulate.md): 'allow' to simulate only when a "
            "request sends the X-Ltxserve-Simulate header, or directives applied to every "
            "request, e.g. 'fail=content_filtered_error' or 'submit=429,retry_after=2'."
        ),
    ] = None,
    max_concurrency: MaxConcurrency = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            help="Default callback_url of the key's jobs (docs/webhooks.md); `keys webhook` "
            "shows the signing secret."
        ),
    ] = None,
) -> None:
    """Create an API key; it is printed alone as the last line."""
    from ltxserve.errors import LtxError
    from ltxserve.keys import create_key
    from ltxserve.webhooks.callback import check_target

    overrides = _limit_overrides(max_concurrency, None, None)
    store = _open_store(data_dir, "keys create")
    try:
        if webhook_url is not None:
            check_target(webhook_url, _settings(data_dir), "--webhook-url")
        token = create_key(store, name, simulate, webhook_url)
    except LtxError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    if overrides:
        from ltxserve.keys import find_key

        store.set_key_limits(str(find_key(store, token)["id"]), **overrides)
    typer.echo(token)


def _key_line(k: dict[str, Any]) -> str:
    from ltxserve.api.status import iso_ms

    revoked = iso_ms(k["revoked_at"]) if k["revoked_at"] else "-"
    sim = f"\tsimulate={k['simulate']}" if k.get("simulate") is not None else ""
    hook = f"\twebhook={k['webhook_url']}" if k.get("webhook_url") else ""
    return (
        f"{k['id']}\t{k['prefix']}...\t{k['name'] or '-'}\t"
        f"{iso_ms(k['created_at'])}\trevoked={revoked}{sim}{hook}"
    )


@keys_app.command("list", cls=Command)
def keys_list(data_dir: DataDir = None) -> None:
    """List keys (id, prefix, name, created, revoked; simulate for client-testing keys)."""
    for k in _open_store(data_dir, "keys list").list_keys():
        typer.echo(_key_line(k))


@keys_app.command("revoke", cls=Command)
def keys_revoke(
    key_ref: Annotated[
        str,
        typer.Argument(
            metavar="ID_OR_PREFIX",
            help="Any unambiguous start (4+ characters) of an id or prefix as `keys list` shows "
            "it, or the whole key (never printed back).",
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key by id, prefix, or the key itself. An ambiguous start lists the keys
    it matches and revokes none."""
    from ltxserve.keys import KeyMatchError, find_key

    store = _open_store(data_dir, "keys revoke")
    try:
        key = find_key(store, key_ref)
    except KeyMatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        for k in exc.candidates:
            typer.echo(f"  {_key_line(k)}", err=True)
        raise typer.Exit(1) from None
    store.revoke_key(str(key["id"]))
    typer.echo(f"revoked key {key['id']} ({key['prefix']}...)")


# -- limits per key (docs/limits.md) ---------------------------------------------------

MaxConcurrency = Annotated[
    str | None,
    typer.Option(
        "--max-concurrency",
        help="Most jobs this key may have pending or processing: a number, 0 or 'unlimited' "
        "(no limit), or 'default' (LTXSERVE_MAX_UNFINISHED_PER_KEY, 2 unless set).",
        show_default=False,
    ),
]


def _limit_value(option: str, text: str | None, kind: type[int] | type[float]) -> Any:
    """The override an option asks for: (set, value); 'default' clears it (None)."""
    if text is None:
        return ...
    word = text.strip().lower()
    if word == "default":
        return None
    if word in ("unlimited", "off", "none"):
        return kind(0)
    try:
        value = kind(word)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give a number, 0 or 'unlimited', or 'default'", param_hint=option
        ) from None
    if value < 0 or (kind is float and not math.isfinite(value)):
        raise typer.BadParameter(f"{text!r} must be 0 or more", param_hint=option)
    return value


def _limit_overrides(
    max_concurrency: str | None, rate: str | None, burst: str | None
) -> dict[str, Any]:
    values = {
        "max_unfinished": _limit_value("--max-concurrency", max_concurrency, int),
        "rate_per_second": _limit_value("--rate", rate, float),
        "rate_burst": _limit_value("--burst", burst, int),
    }
    if values["rate_burst"] == 0:
        raise typer.BadParameter("a burst of 0 admits nothing; use --rate 0", param_hint="--burst")
    return {k: v for k, v in values.items() if v is not ...}


def _limits_line(store: JobStore, key: dict[str, Any]) -> str:
    """The key's limits as they apply: its own value, else the server's setting."""
    own = store.get_key_limits(str(key["id"]))
    s = _settings(None)

    def show(value: float, own_value: float | None, unit: str = "") -> str:
        text = "unlimited" if value == 0 else f"{value:g}{unit}"
        return text + (" (this key)" if own_value is not None else " (server default)")

    cap = s.max_unfinished_per_key if own.max_unfinished is None else own.max_unfinished
    rate = s.rate_limit_per_second if own.rate_per_second is None else own.rate_per_second
    burst = s.rate_limit_burst if own.rate_burst is None else own.rate_burst
    return (
        f"{key['id']} ({key['prefix']}...): max-concurrency {show(cap, own.max_unfinished)}; "
        f"rate {show(rate, own.rate_per_second, '/s')}; burst {show(burst, own.rate_burst)}"
    )


@keys_app.command("set-limits", cls=Command)
def keys_set_limits(
    key_ref: Annotated[
        str,
        typer.Argument(
            metavar="ID_OR_PREFIX",
            help="The key, as for `keys revoke` (4+ characters of an id or prefix, or the key).",
        ),
    ],
    max_concurrency: MaxConcurrency = None,
    rate: Annotated[
        str | None,
        typer.Option(
            help="Submits per second this key may make (token bucket): a number, 0 or "
            "'unlimited' (off), or 'default' (LTXSERVE_RATE_LIMIT_PER_SECOND).",
            show_default=False,
        ),
    ] = None,
    burst: Annotated[
        str | None,
        typer.Option(
            help="The bucket's size, submits at once after a pause: a number, or 'default' "
            "(LTXSERVE_RATE_LIMIT_BURST).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Set a key's own limits (docs/limits.md), then print the limits that apply to it;
    with no option, only print them. They apply to its next submit, on every API process."""
    from ltxserve.keys import KeyMatchError, find_key

    overrides = _limit_overrides(max_concurrency, rate, burst)
    store = _open_store(data_dir, "keys set-limits")
    try:
        key = find_key(store, key_ref)
    except KeyMatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if overrides:
        store.set_key_limits(str(key["id"]), **overrides)
    typer.echo(_limits_line(store, key))


add_credit_commands(keys_app, _open_store)  # top-up, show, history (cli_credits.py)


@keys_app.command("webhook", cls=Command)
def keys_webhook(
    key_ref: Annotated[
        str,
        typer.Argument(
            metavar="ID_OR_PREFIX", help="The key, as `keys revoke` takes it (id or prefix)."
        ),
    ],
    data_dir: DataDir = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Set the default callback_url of the key's jobs submitted from now on."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the default URL.")] = False,
    rotate_secret: Annotated[
        bool,
        typer.Option("--rotate-secret", help="A new signing secret (the old one stops at once)."),
    ] = False,
) -> None:
    """Show or change a key's webhook settings (docs/webhooks.md): prints the default
    URL and the signing secret (whsec_...) that receivers verify signatures with."""
    from ltxserve.errors import LtxError
    from ltxserve.keys import KeyMatchError, find_key, set_webhook
    from ltxserve.webhooks.callback import check_target

    if clear and webhook_url is not None:
        typer.echo("error: give --webhook-url or --clear, not both", err=True)
        raise typer.Exit(2)
    store = _open_store(data_dir, "keys webhook")
    try:
        key = find_key(store, key_ref)
        url = key.get("webhook_url")
        if clear:
            url = None
        elif webhook_url is not None:
            url = check_target(webhook_url, _settings(data_dir), "--webhook-url")
        row = set_webhook(store, str(key["id"]), url, rotate_secret=rotate_secret)
    except KeyMatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except LtxError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"key {row['id']} ({row['prefix']}...)")
    typer.echo(f"webhook_url: {row['webhook_url'] or '-'}")
    typer.echo(f"webhook_secret: {row['webhook_secret'] or '-'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
