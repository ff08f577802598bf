"""Engines stand apart from the server: they import no server layer and read no setting
of their own (engines.base). A scan of their source, so a shortcut cannot creep in."""

from __future__ import annotations

import ast
from pathlib import Path

import ltxserve.engines

ENGINES = Path(ltxserve.engines.__file__).parent
# What an engine may import from ltxserve: the domain errors, the settings type (it is
# handed an instance), the wire contract (the typed requests), media, and itself.
ALLOWED = (
    "ltxserve.config",
    "ltxserve.errors",
    "ltxserve.jobs.contract",
    "ltxserve.media",
    "ltxserve.engines",
)


def _modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _reads_settings(tree: ast.AST) -> list[tuple[int, str]]:
    """Settings() built here, or the environment read (writes, such as the loader
    switching Hugging Face offline, are not settings)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name in ("Settings", "getenv"):
                found.append((node.lineno, f"{name}()"))
            if (
                isinstance(f, ast.Attribute)
                and f.attr == "get"
                and isinstance(f.value, ast.Attribute)
                and f.value.attr == "environ"
            ):
                found.append((node.lineno, "environ.get()"))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "environ"
        ):
            found.append((node.lineno, "environ[...]"))
    return found


def test_engines_import_no_server_layer() -> None:
    bad = [
        f"{path.relative_to(ENGINES.parent)}:{line}: {module}"
        for path in sorted(ENGINES.rglob("*.py"))
        for line, module in _modules(ast.parse(path.read_text()))
        if module.startswith("ltxserve")
        and not any(module == a or module.startswith(a + ".") for a in ALLOWED)
    ]
    assert not bad, "engines import a server layer:\n" + "\n".join(bad)


def test_engines_read_no_settings_of_their_own() -> None:
    bad = [
        f"{path.relative_to(ENGINES.parent)}:{line}: {what}"
        for path in sorted(ENGINES.rglob("*.py"))
        for line, what in _reads_settings(ast.parse(path.read_text()))
    ]
    assert not bad, "engines read settings themselves (take them in the constructor):\n" + (
        "\n".join(bad)
    )
