"""The model engine: LTX-2 through diffusers (see docs/model-engine.md).

Importing this package is cheap (no torch); ``available()`` says whether the
engine can run here: CUDA present and every configured weights path complete.
"""

from __future__ import annotations

from ltxserve.config import Settings
from ltxserve.engines.ltx.engine import LtxEngine

__all__ = ["LtxEngine", "available", "check_config"]


def available(settings: Settings) -> bool:
    """True only with CUDA and a registry whose weights all exist; never raises."""
    try:
        from ltxserve.engines.ltx.registry import load_registry

        path = settings.ltx_models_file
        if path is None:
            return False
        load_registry(path).check_files()
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def check_config(settings: Settings) -> None:
    """Raise ConfigError (a RegistryError) unless the registry names complete weights.

    What ``LtxEngine.load`` checks first, without importing torch: cheap enough for
    ``serve`` and ``worker`` to run before they start anything.
    """
    import importlib.util

    from ltxserve.config import ConfigError
    from ltxserve.engines.ltx.registry import RegistryError, load_registry

    path = settings.ltx_models_file
    if path is None:
        raise RegistryError(
            "the ltx engine needs a model registry (a JSON or TOML file naming the local weights)"
        )
    load_registry(path).check_files()
    missing = [
        m for m in ("torch", "diffusers", "transformers") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise ConfigError(
            f"the ltx engine needs the 'ltx' extra (pip install '.[ltx]'); "
            f"missing: {', '.join(missing)}",
            doc="docs/model-engine.md",
        )
