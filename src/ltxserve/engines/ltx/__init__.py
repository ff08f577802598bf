"""The model engine: LTX-2 through diffusers (see docs/model-engine.md).

Importing this package is cheap (no torch); ``available()`` says whether the
engine can run here: CUDA present and every configured weights path complete.
"""

from __future__ import annotations

from ltxserve.engines.ltx.engine import LtxEngine

__all__ = ["LtxEngine", "available"]


def available() -> bool:
    """True only with CUDA and a registry whose weights all exist; never raises."""
    try:
        from ltxserve.engines.ltx.engine import registry_path
        from ltxserve.engines.ltx.registry import load_registry

        path = registry_path()
        if path is None:
            return False
        load_registry(path).check_files()
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False
