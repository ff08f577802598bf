"""The console scripts ``ltxserve`` and ``ltx``: check the install, then hand over.

The distribution's base install is the SDK alone (``ltxserve.client``: httpx and
pydantic). The ``ltx`` CLI needs the ``cli`` extra (typer, rich) and the server the
``server`` extra (pyproject.toml). pip installs both scripts whatever extras were
chosen, since a console script cannot depend on an extra, so each looks for what it
needs before importing anything of its own. When something is missing it prints one
line naming the extra and the exact pip command for this environment, and exits 69
(``EX_UNAVAILABLE``), where an import inside a typer callback would have shown a
traceback.

The check is ``importlib.util.find_spec`` on one module per distribution of the extra:
cheap (nothing is imported), so ``--help`` stays fast. tests/client/test_install.py
checks the lists against pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from collections.abc import Iterable
from importlib import metadata
from urllib.parse import unquote, urlsplit

EX_UNAVAILABLE = 69
"""Exit status when the script's extra is not installed (sysexits.h)."""

CLI_MODULES = ("typer", "rich")
"""One importable module per distribution of the ``cli`` extra."""

SERVER_MODULES = (
    *CLI_MODULES,
    "fastapi",
    "uvicorn",
    "pydantic_settings",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "av",
    "numpy",
    "PIL",
    "OpenEXR",
    "orjson",
    "prometheus_client",
    "boto3",
    "swagger_ui",
    "ahocorasick",
    "standardwebhooks",
)
"""One importable module per distribution of the ``server`` extra."""


def missing(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that this Python cannot import."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def install_args(extra: str) -> list[str]:
    """pip's arguments for this distribution with ``extra``: from where it was
    installed (PEP 610's direct_url.json: a checkout, editable or not, or a VCS URL),
    else by project name."""
    try:
        raw = metadata.distribution("ltxserve").read_text("direct_url.json")
        origin = json.loads(raw) if raw else {}
    except (metadata.PackageNotFoundError, ValueError):
        origin = {}
    url = str(origin.get("url", ""))
    if url.startswith("file://"):
        editable = bool(origin.get("dir_info", {}).get("editable"))
        return [*(["-e"] if editable else []), f"{unquote(urlsplit(url).path)}[{extra}]"]
    if "vcs_info" in origin:
        vcs = origin["vcs_info"].get("vcs", "git")
        return [f"ltxserve[{extra}] @ {vcs}+{url}"]
    return [f"ltxserve[{extra}]"]


def require(program: str, extra: str, modules: Iterable[str]) -> None:
    """Exit with one line that says what to install when ``modules`` are not all
    importable."""
    absent = missing(modules)
    if absent:
        pip = shlex.join([sys.executable, "-m", "pip", "install", *install_args(extra)])
        sys.stderr.write(
            f"{program}: needs the '{extra}' extra, which is not installed here "
            f"(no module {', '.join(absent)}); install it with: {pip}\n"
        )
        raise SystemExit(EX_UNAVAILABLE)


def server() -> None:
    """``ltxserve``: the server's command line (serve, worker, keys)."""
    require("ltxserve", "server", SERVER_MODULES)
    from ltxserve.cli import main

    main()


def cli() -> None:
    """``ltx``: the SDK as a shell command."""
    require("ltx", "cli", CLI_MODULES)
    from ltxserve.client.cli import main

    main()
