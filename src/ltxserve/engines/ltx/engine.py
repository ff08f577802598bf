"""The model engine: real LTX-2 generation through diffusers' LTX-2 pipelines.

``load()`` reads the model registry (``LTXSERVE_LTX_MODELS_FILE``), checks every
weights directory it names, and loads each once into resident pipelines; a
missing or incomplete path fails here, at worker start, never at a job.
``run()`` plans the output exactly as every engine does (engines.plan), maps the
endpoint onto a pipeline (see create.py, edit.py, v2v.py) and writes media of
exactly the planned size, rate, length and audio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ltxserve.config import ConfigError
from ltxserve.engines.base import EngineJob, EngineResult, ProgressCallback
from ltxserve.engines.ltx.registry import ModelSpec, Registry, RegistryError, load_registry
from ltxserve.engines.plan import plan_job
from ltxserve.errors import InvalidRequestError

log = logging.getLogger(__name__)


def registry_path() -> Any:
    from ltxserve.config import Settings

    return Settings().ltx_models_file


class LtxEngine:
    name = "ltx"

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry
        self.models: dict[str, tuple[ModelSpec, Any]] = {}

    def load(self) -> None:
        if self.registry is None:
            path = registry_path()
            if path is None:
                raise RegistryError(
                    "the ltx engine needs LTXSERVE_LTX_MODELS_FILE (a JSON or "
                    "TOML model registry; see docs/model-engine.md)"
                )
            self.registry = load_registry(path)
        self.registry.check_files()
        for warning in self.registry.warnings:
            log.warning("ltx model registry: %s", warning)
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"the ltx engine needs the 'ltx' extra (pip install '.[ltx]': "
                f"torch, diffusers, transformers): {exc}",
                doc="docs/model-engine.md",
            ) from exc
        from ltxserve.engines.ltx.loader import load_all

        started = time.monotonic()
        self.models = load_all(self.registry)
        log.info("ltx engine ready: %s (%.1fs)", ", ".join(self.models), time.monotonic() - started)

    def run(self, job: EngineJob, progress: ProgressCallback) -> EngineResult:
        from ltxserve.engines.ltx import create, edit, v2v
        from ltxserve.engines.ltx.jobs import JobContext

        handlers: dict[str, Callable[[JobContext], EngineResult]] = {
            "text-to-video": create.text_or_image_to_video,
            "image-to-video": create.text_or_image_to_video,
            "audio-to-video": create.audio_to_video,
            "retake": edit.retake,
            "extend": edit.extend,
            "video-to-video-hdr": v2v.hdr,
            "video-to-video-reframe": v2v.reframe,
        }
        if not self.models or self.registry is None:
            raise RuntimeError("the ltx engine was not loaded")
        handler = handlers.get(job.endpoint)
        if handler is None:
            raise InvalidRequestError(f"unknown endpoint {job.endpoint}")
        try:
            spec = self.registry.spec_for(job.endpoint, job.request.get("model"))
        except KeyError as exc:
            raise InvalidRequestError(
                f"model {exc.args[0]} is not configured on this server"
            ) from None
        _, model = self.models[spec.name]
        infos, plan = plan_job(job)
        progress(0.0)
        return handler(JobContext(job, plan, infos, spec, model, progress))
