"""The SDK and the ``ltx`` CLI install and run without the server (pyproject.toml).

The base install is ``ltxserve.client`` with httpx and pydantic; the ``cli`` extra adds
typer and rich for ``ltx``; the ``server`` extra everything else. Checked four ways:

- the source: every import in the SDK and CLI modules is the standard library, a
  declared dependency of their part (base, or base + cli), or one of the few ltxserve
  modules they may use;
- a real import: loading ``ltxserve.client`` (and ``ltxserve.client.cli``) brings in no
  distribution outside the dependency closure of its part;
- the console scripts: without their extra they exit 69 with one line that names the
  extra (``ltxserve.entry_points``), and their module lists match pyproject.toml;
- a fresh venv (slow, ~1-2 min; LTXSERVE_SLOW_TESTS=1, set in CI): ``pip install`` of a
  copy of the checkout, then of ``[cli]``, and what works and what does not there.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ltxserve import entry_points
from tests.support import ROOT

SRC = ROOT / "src" / "ltxserve"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CLIENT_FILES = sorted((SRC / "client").glob("*.py"))
CLI_FILES = [p for p in CLIENT_FILES if p.name.startswith("_cli_") or p.name == "cli.py"]
SDK_FILES = [p for p in CLIENT_FILES if p not in CLI_FILES]
CLI_FILES.append(SRC / "cli_flags.py")
LTXSERVE_ALLOWED = re.compile(r"^ltxserve(\.client(\..+)?|\.cli_flags)?$")
"""The ltxserve modules the SDK and CLI may import: the package root (``__version__``),
the client package, and the typer flag classes both CLIs share."""


def declared(part: str) -> set[str]:
    """Canonical names of the distributions ``part`` ('base' or an extra) declares,
    without the project's references to its own extras."""
    specs = PROJECT["dependencies"] if part == "base" else PROJECT["optional-dependencies"][part]
    names = {canonicalize_name(Requirement(s).name) for s in specs}
    return names - {"ltxserve"}


def closure(names: set[str]) -> set[str]:
    """``names`` and everything their installed metadata requires (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def distributions_of(module: str, owners: dict[str, list[str]]) -> set[str]:
    """Canonical names of the installed distributions that hold top-level ``module``,
    including a lone extension module (OpenEXR's .so), which packages_distributions()
    does not infer."""
    names = owners.get(module) or [
        d.metadata["Name"]
        for d in metadata.distributions()
        if any(len(f.parts) == 1 and f.name.split(".")[0] == module for f in d.files or [])
    ]
    return {canonicalize_name(n) for n in names}


def imported_top_levels(path: Path) -> set[str]:
    """Absolute imports of one file as dotted names (``from a.b import c`` -> a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            assert node.module is not None
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("files", "parts"),
    [(SDK_FILES, ("base",)), (CLI_FILES, ("base", "cli"))],
    ids=["sdk", "cli"],
)
def test_sources_import_only_their_declared_dependencies(
    files: list[Path], parts: tuple[str, ...]
) -> None:
    allowed = set().union(*(declared(p) for p in parts))
    assert allowed and len(files) >= 4
    wrong = []
    for path in files:
        for name in sorted(imported_top_levels(path)):
            top = name.split(".")[0]
            if top == "ltxserve":
                ok = bool(LTXSERVE_ALLOWED.match(name))
            else:
                ok = top in sys.stdlib_module_names or top == "__future__"
                ok = ok or canonicalize_name(top) in allowed
            if not ok:
                wrong.append(f"{path.relative_to(ROOT)}: {name}")
    assert not wrong, f"imports outside {parts}: {wrong}"
    # ltxserve/__init__.py is loaded by every import of the client: it must stay bare.
    assert imported_top_levels(SRC / "__init__.py") == set()


LOADED = """
import json, sys
import {deps}  # what they load is theirs (httpx loads rich and click when they are there)
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize(
    ("module", "parts"),
    [("ltxserve.client", ("base",)), ("ltxserve.client.cli", ("base", "cli"))],
)
def test_importing_loads_nothing_outside_the_dependency_closure(
    module: str, parts: tuple[str, ...]
) -> None:
    direct = set().union(*(declared(p) for p in parts))
    code = LOADED.format(deps=", ".join(sorted(direct)), module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(out.stdout)
    allowed = closure(direct)
    owners = metadata.packages_distributions()
    wrong = []
    for name in loaded:
        top = name.split(".")[0]
        if top == "ltxserve":
            if not LTXSERVE_ALLOWED.match(name):
                wrong.append(name)
        elif top not in sys.stdlib_module_names and not top.startswith("_sysconfigdata"):
            dists = distributions_of(top, owners)
            if not dists & allowed:
                wrong.append(f"{name} ({', '.join(sorted(dists)) or 'no distribution'})")
    assert not wrong, f"`import {module}` loads what {parts} does not declare: {wrong}"
    assert module in loaded  # the probe ran in a fresh process


def test_script_module_lists_match_the_extras() -> None:
    """``entry_points`` probes one module per distribution of each extra."""
    owners = metadata.packages_distributions()
    for modules, parts in [
        (entry_points.CLI_MODULES, ("cli",)),
        (entry_points.SERVER_MODULES, ("cli", "server")),
    ]:
        by_dist = {d: m for m in modules for d in distributions_of(m, owners)}
        assert len(by_dist) == len(modules), f"modules of no or one same distribution: {modules}"
        assert set(by_dist) == set().union(*(declared(p) for p in parts)), parts


BLOCKED = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # find_spec() answers None, import raises
sys.argv = [{program!r}, "--help"]
from ltxserve import entry_points
entry_points.{function}()
"""


@pytest.mark.parametrize(
    ("program", "function", "blocked", "extra"),
    [
        ("ltxserve", "server", ["sqlalchemy", "av"], "server"),
        ("ltxserve", "server", ["typer"], "server"),
        ("ltx", "cli", ["rich"], "cli"),
    ],
)
def test_script_without_its_extra_says_what_to_install(
    program: str, function: str, blocked: list[str], extra: str
) -> None:
    code = BLOCKED.format(blocked=blocked, program=program, function=function)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == entry_points.EX_UNAVAILABLE, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{program}: needs the '{extra}' extra"), lines[0]
    assert f"no module {', '.join(blocked)}" in lines[0]
    assert f"{shlex.quote(sys.executable)} -m pip install" in lines[0]
    assert f"[{extra}]" in lines[0]


@pytest.mark.parametrize(("program", "function"), [("ltxserve", "server"), ("ltx", "cli")])
def test_script_with_its_extra_runs_its_cli(program: str, function: str) -> None:
    code = BLOCKED.format(blocked=[], program=program, function=function)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"Usage: {program} " in out.stdout


def test_scripts_point_at_the_checking_entry_points() -> None:
    assert PROJECT["scripts"] == {
        "ltxserve": "ltxserve.entry_points:server",
        "ltx": "ltxserve.entry_points:cli",
    }


def _run(venv: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def _pip_command(venv: Path, spec: str) -> re.Pattern[str]:
    """The command the scripts print: this venv's python (bin/python3.11 for a console
    script) running pip on the checkout with the extra."""
    python = re.escape(f"{venv}/bin/python")
    return re.compile(rf"{python}[0-9.]* -m pip install {re.escape(shlex.quote(spec))}$", re.M)


def _imports(venv: Path, module: str, env: dict[str, str]) -> bool:
    return _run(venv, "python", "-c", f"import {module}", env=env).returncode == 0


@pytest.mark.skipif(
    not os.environ.get("LTXSERVE_SLOW_TESTS"),
    reason="installs the package twice in a fresh venv (~1-2 min); set LTXSERVE_SLOW_TESTS=1",
)
def test_client_only_install_in_a_fresh_venv(tmp_path: Path) -> None:
    """`pip install <checkout>` gives the SDK alone, `<checkout>[cli]` adds `ltx`; neither
    brings the server, whose script says how to get it."""
    repo = tmp_path / "ltxserve"
    shutil.copytree(
        ROOT,
        repo,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "artifacts", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    # pip's own settings (index, cache: HOME stays, so its cache is reused) and no
    # PYTHONPATH: the venv must see only what it installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and k != "VIRTUAL_ENV"}
    env.update(PATH="/usr/bin:/bin", PIP_DISABLE_PIP_VERSION_CHECK="1")
    venv = tmp_path / "venv"
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
        check=True,
        env=env,
        timeout=300,
    )

    sdk = _run(venv, "pip", "install", "-q", str(repo), env=env)
    assert sdk.returncode == 0, sdk.stderr
    assert _imports(venv, "ltxserve.client", env)
    for absent in ("sqlalchemy", "av", "fastapi", "numpy", "typer", "rich"):
        assert not _imports(venv, absent, env), f"{absent} came with the SDK"
    ltx = _run(venv, "ltx", "--help", env=env)
    assert ltx.returncode == 69 and len(ltx.stderr.splitlines()) == 1, ltx.stderr
    assert _pip_command(venv, f"{repo}[cli]").search(ltx.stderr), ltx.stderr

    cli = _run(venv, "pip", "install", "-q", f"{repo}[cli]", env=env)
    assert cli.returncode == 0, cli.stderr
    ltx = _run(venv, "ltx", "--help", env=env)
    assert ltx.returncode == 0 and "text-to-video" in ltx.stdout, ltx.stderr
    for absent in ("sqlalchemy", "av", "fastapi", "numpy"):
        assert not _imports(venv, absent, env), f"{absent} came with the CLI"
    serve = _run(venv, "ltxserve", "serve", env=env)
    assert serve.returncode == 69 and serve.stdout == "", serve.stderr
    (line,) = serve.stderr.splitlines()
    assert line.startswith("ltxserve: needs the 'server' extra") and "sqlalchemy" in line
    assert _pip_command(venv, f"{repo}[server]").search(line), line
