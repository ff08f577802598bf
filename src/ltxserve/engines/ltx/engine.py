"""The model engine: real LTX-2 generation through diffusers' LTX-2 pipelines.

``load()`` reads the model registry (the settings' ``ltx_models_file``,
``LTXSERVE_LTX_MODELS_FILE``), checks every weights directory it names, and loads
each once into resident pipelines; a missing or incomplete path fails here, at
worker start, never at a job. Each job arrives planned like every engine's
(engines.dispatch, engines.plan); its handler picks the loaded model the request
names, maps the endpoint onto a pipeline (see create.py, edit.py, v2v.py) and
writes media of exactly the planned size, rate, length and audio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ltxserve.config import ConfigError, Settings
from ltxserve.engines.base import EngineJob, EngineResult, Handler, ProgressCallback
from ltxserve.engines.ltx.registry import ModelSpec, Registry, RegistryError, load_registry
from ltxserve.errors import InvalidRequestError

if TYPE_CHECKING:  # jobs.py imports torch: only once the engine loads
    from ltxserve.engines.ltx.jobs import JobContext

log = logging.getLogger(__name__)


class LtxEngine:
    name = "ltx"

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.registry_file = settings.ltx_models_file
        self.registry = registry
        self.models: dict[str, tuple[ModelSpec, Any]] = {}
        self._handlers: dict[str, Handler] = {}

    def load(self) -> None:
        if self.registry is None:
            if self.registry_file is None:
                raise RegistryError(
                    "the ltx engine needs LTXSERVE_LTX_MODELS_FILE (a JSON or "
                    "TOML model registry; see docs/model-engine.md)"
                )
            self.registry = load_registry(self.registry_file)
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
        from ltxserve.engines.ltx import create, edit, v2v
        from ltxserve.engines.ltx.loader import load_all

        started = time.monotonic()
        self.models = load_all(self.registry)
        makers: dict[str, Callable[[JobContext[Any]], EngineResult]] = {
            "text-to-video": create.text_or_image_to_video,
            "image-to-video": create.text_or_image_to_video,
            "audio-to-video": create.audio_to_video,
            "retake": edit.retake,
            "extend": edit.extend,
            "video-to-video-hdr": v2v.hdr,
            "video-to-video-reframe": v2v.reframe,
        }
        self._handlers = {endpoint: self._on_model(make) for endpoint, make in makers.items()}
        log.info("ltx engine ready: %s (%.1fs)", ", ".join(self.models), time.monotonic() - started)

    def handlers(self) -> Mapping[str, Handler]:
        if not self._handlers:
            raise RuntimeError("the ltx engine was not loaded")
        return self._handlers

    def _on_model(self, make: Callable[[JobContext[Any]], EngineResult]) -> Handler:
        """``make(JobContext)`` on the loaded model the request names (or the endpoint's)."""
        from ltxserve.engines.ltx.jobs import JobContext

        def handler(job: EngineJob[Any], progress: ProgressCallback) -> EngineResult:
            assert self.registry is not None
            try:  # hdr names no model: the registry's choice for the endpoint
                spec = self.registry.spec_for(job.endpoint, getattr(job.request, "model", None))
            except KeyError as exc:
                raise InvalidRequestError(
                    f"model {exc.args[0]} is not configured on this server"
                ) from None
            _, model = self.models[spec.name]
            progress(0.0)
            return make(JobContext(job, spec, model, progress))

        return handler
