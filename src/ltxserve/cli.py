"""The ``ltxserve`` command: serve, worker, keys."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ltxserve.config import Settings

app = typer.Typer(help="ltxserve: a self-hosted server for the LTX Video API.",
                  no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data directory (SQLite file, blobs, secret). "
    "Default: $LTXSERVE_DATA_DIR or ~/.local/share/ltxserve.", show_default=False)]


def _settings(data_dir: Path | None) -> Settings:
    if data_dir is not None:
        os.environ["LTXSERVE_DATA_DIR"] = str(data_dir.resolve())
        return Settings(data_dir=data_dir.resolve())
    return Settings()


def _logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data_dir: DataDir = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes to run beside the API (0: API only). "
        "Default: $LTXSERVE_WORKERS or 1.")] = None,
    engine: Annotated[str | None, typer.Option(
        help="auto | preview | minimal | ltx. Default: $LTXSERVE_ENGINE or auto.")] = None,
) -> None:
    """Run the API and its workers on embedded defaults (SQLite + local files)."""
    import uvicorn

    from ltxserve.api.app import create_app
    from ltxserve.engines import auto_engine_name
    from ltxserve.jobs.db import open_store
    from ltxserve.keys import create_key
    from ltxserve.supervisor import Supervisor

    _logging()
    settings = _settings(data_dir)
    if engine:
        os.environ["LTXSERVE_ENGINE"] = engine
        settings.engine = engine
    n_workers = settings.workers if workers is None else workers
    store = open_store(settings)
    url = f"http://{host}:{port}"
    typer.echo(f"ltxserve {url}  data dir {settings.data_dir}")
    if not store.list_keys():
        key = create_key(store, "default")
        typer.echo(f"Created an API key (shown once): {key}")
    engine_name = auto_engine_name() if settings.engine == "auto" else settings.engine
    typer.echo(f"engine: {engine_name}; workers: {n_workers}")
    supervisor = Supervisor(n_workers, settings.data_dir, engine_name)
    if n_workers:
        supervisor.start()
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                    access_log=False)
    finally:
        supervisor.stop()


@app.command()
def worker(
    data_dir: DataDir = None,
    engine: Annotated[str, typer.Option(help="auto | preview | minimal | ltx.")] = "auto",
) -> None:
    """Run one worker: claim jobs from the store and generate them."""
    from ltxserve.engines import auto_engine_name
    from ltxserve.worker import run_worker

    _logging()
    settings = _settings(data_dir)
    name = engine if engine != "auto" else (
        settings.engine if settings.engine != "auto" else auto_engine_name())
    run_worker(settings, name)


@keys_app.command("create")
def keys_create(
    data_dir: DataDir = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    simulate: Annotated[str | None, typer.Option(
        help="Make a client-testing key (docs/simulate.md): 'allow' to simulate only when a "
             "request sends the X-Ltxserve-Simulate header, or directives applied to every "
             "request, e.g. 'fail=content_filtered_error' or 'submit=429,retry_after=2'.")]
    = None,
) -> None:
    """Create an API key; it is printed alone as the last line."""
    from ltxserve.errors import LtxError
    from ltxserve.jobs.db import open_store
    from ltxserve.keys import create_key

    store = open_store(_settings(data_dir))
    try:
        token = create_key(store, name, simulate)
    except LtxError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    typer.echo(token)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys (id, prefix, name, created, revoked; simulate for client-testing keys)."""
    from ltxserve.api.status import iso_ms
    from ltxserve.jobs.db import open_store

    for k in open_store(_settings(data_dir)).list_keys():
        revoked = iso_ms(k["revoked_at"]) if k["revoked_at"] else "-"
        sim = f"\tsimulate={k['simulate']}" if k.get("simulate") is not None else ""
        typer.echo(f"{k['id']}\t{k['prefix']}...\t{k['name'] or '-'}\t"
                   f"{iso_ms(k['created_at'])}\trevoked={revoked}{sim}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id or prefix, as `keys list` shows.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key by id or prefix."""
    from ltxserve.jobs.db import open_store

    n = open_store(_settings(data_dir)).revoke_key(key_id.removesuffix("..."))
    if not n:
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {n} key(s)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
