"""Generation backends behind one interface (see engines.base).

``get_engine(name, settings)`` builds one by name, handing it the deployment's
settings (engines read no environment of their own); ``auto`` picks the model
engine when a GPU and configured weights are present, the preview engine
otherwise, and the minimal engine when neither of those is installed.
"""

from __future__ import annotations

import importlib

from ltxserve.config import ConfigError, Settings
from ltxserve.engines.base import Engine

ENGINES = {
    "minimal": "ltxserve.engines.minimal:MinimalEngine",
    "preview": "ltxserve.engines.preview:PreviewEngine",
    "ltx": "ltxserve.engines.ltx:LtxEngine",
}


class EngineUnavailable(ConfigError):
    """The named engine cannot run here (unknown name, module missing)."""


def _load(name: str, settings: Settings) -> Engine:
    try:
        module_name, _, cls_name = ENGINES[name].partition(":")
    except KeyError:
        choices = ", ".join(ENGINES)
        raise EngineUnavailable(f"unknown engine {name!r}; choose one of {choices}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailable(f"engine {name} is not available: {exc}") from exc
    engine: Engine = getattr(module, cls_name)(settings)
    return engine


def auto_engine_name(settings: Settings) -> str:
    """ltx with CUDA and configured weights, else preview, else minimal."""
    try:
        ltx = importlib.import_module("ltxserve.engines.ltx")
        if ltx.available(settings):
            return "ltx"
    except ImportError:
        pass
    try:
        importlib.import_module("ltxserve.engines.preview")
        return "preview"
    except ImportError:
        return "minimal"


def get_engine(name: str, settings: Settings) -> Engine:
    return _load(auto_engine_name(settings) if name == "auto" else name, settings)


def check_engine(name: str, settings: Settings) -> str:
    """The engine ``name`` resolves to, after the cheap checks of its configuration.

    Run by ``serve`` and ``worker`` before anything starts, so a setting that cannot
    work stops them with one line (ConfigError) instead of a worker that is
    restarted forever. ``load()`` in the runner repeats the full checks.
    """
    resolved = auto_engine_name(settings) if name == "auto" else name
    if resolved not in ENGINES:
        raise EngineUnavailable(
            f"unknown engine {name!r}; choose one of auto, {', '.join(ENGINES)}",
            setting="--engine / LTXSERVE_ENGINE",
        )
    if resolved == "ltx":
        from ltxserve.engines.ltx import check_config

        check_config(settings)
    return resolved
