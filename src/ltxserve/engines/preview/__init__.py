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

from collections.abc import Callable

from ltxserve.engines.base import EngineJob, EngineResult, ProgressCallback
from ltxserve.engines.plan import plan_job
from ltxserve.engines.preview.context import Context
from ltxserve.engines.preview.prompt import request_seed
from ltxserve.errors import InvalidRequestError

__all__ = ["PreviewEngine"]


def _endpoints() -> dict[str, Callable[[Context], EngineResult]]:
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

    def __init__(self) -> None:
        self._routes: dict[str, Callable[[Context], EngineResult]] | None = None

    def load(self) -> None:
        self._routes = _endpoints()

    def run(self, job: EngineJob, progress: ProgressCallback) -> EngineResult:
        if self._routes is None:
            self.load()
        assert self._routes is not None
        route = self._routes.get(job.endpoint)
        if route is None:
            raise InvalidRequestError(f"unknown endpoint {job.endpoint}")
        infos, plan = plan_job(job)
        job.output_dir.mkdir(parents=True, exist_ok=True)
        ctx = Context(job, plan, infos, request_seed(job.endpoint, job.request), progress)
        result = route(ctx)
        progress(1.0)
        return result
