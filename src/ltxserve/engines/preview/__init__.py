"""The preview engine: real, parameter-faithful media on a CPU, streamed frame by frame.

It is not a generative model and never claims to be one (every result carries
``metadata["engine"] == "preview"``). It keeps every promise the API makes about
the *shape* of an output (size, rate, length, audio, first/last frames, untouched
sections) and makes the content follow the request (prompt words choose palette,
shapes, motion and sound; camera_motion moves the camera), so clients, demos and
pipelines can be built and tested against a self-hosted server without a GPU.

Endpoints live in their own modules: generate (text/image-to-video), a2v,
edit (retake, extend), hdr, reframe. See docs/preview-engine.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ltxserve.config import Settings
from ltxserve.engines.base import EngineJob, EngineResult, Handler, ProgressCallback
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.prompt import request_seed

__all__ = ["PreviewEngine"]


def _endpoints() -> dict[str, Callable[[Context[Any]], EngineResult]]:
    from ltxserve.engines.preview import a2v, edit, generate, hdr, reframe

    return {
        "text-to-video": generate.text_to_video,
        "image-to-video": generate.image_to_video,
        "audio-to-video": a2v.audio_to_video,
        "retake": edit.retake,
        "extend": edit.extend,
        "video-to-video-hdr": hdr.video_to_hdr,
        "video-to-video-reframe": reframe.reframe,
    }


class PreviewEngine:
    name = "preview"

    def __init__(self, settings: Settings) -> None:
        self.threads = settings.preview_threads
        self._handlers: dict[str, Handler] = {}

    def load(self) -> None:
        self._handlers = {
            endpoint: self._with_context(make) for endpoint, make in _endpoints().items()
        }

    def handlers(self) -> Mapping[str, Handler]:
        if not self._handlers:
            self.load()
        return self._handlers

    def _with_context(self, make: Callable[[Context[Any]], EngineResult]) -> Handler:
        def handler(job: EngineJob[Any], progress: ProgressCallback) -> EngineResult:
            seed = request_seed(job.endpoint, job.request.model_dump())
            result = make(Context(job, seed, progress, self.threads))
            progress(1.0)
            return result

        return handler
