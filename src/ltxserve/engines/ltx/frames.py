"""The VAE's decoded video, handed to the encoder (or the EXR writer) one frame at a time.

diffusers' own ``output_type="np"``/``"pt"`` post-processing turns the whole
decoded clip into [0, 1] floats (a strided pass over a permuted view, then a
stacked copy) before anything can be encoded: at 720p that is 2.2 s and two
clip-sized float copies on one CPU thread, half the VAE decode's own time. The
engine's pipelines instead learn ``output_type=RAW`` (:func:`allow_raw_output`),
which returns the decoder's output as it is; :class:`DecodedFrames`
then converts a frame to uint8 when the writer asks for it, so conversion runs
frame by frame next to the encoder and no second copy of the clip is ever made.

The HDR pipeline's LogC3 decompression is the same kind of whole-clip pass, with
several clip-sized float temporaries (on the GPU, when the model runs there);
:class:`LinearFrames` applies the pipeline's own decompression to one frame at a
time instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

import av
import numpy as np
import torch
from numpy.typing import NDArray

RAW = "ltxserve-raw"
T = TypeVar("T", bound=np.generic)


def allow_raw_output(pipe: Any) -> None:
    """Let ``pipe(output_type=RAW)`` return the decoder output as it is.

    The pipeline's own processor keeps its config and every other output type; only
    its ``postprocess_video`` (``postprocess_hdr_video`` for HDR) learns RAW. (Patched
    on the instance, not subclassed, so this module does not import diffusers before
    the loader has set offline mode.)
    """
    hdr = getattr(pipe, "hdr_video_processor", None)  # LTX2HDRPipeline's LogC3 processor
    processor, method = (
        (hdr, "postprocess_hdr_video")
        if hdr is not None
        else (pipe.video_processor, "postprocess_video")
    )
    original = getattr(processor, method)

    def postprocess(video: torch.Tensor, output_type: str = "np", **kwargs: Any) -> Any:
        if output_type == RAW:
            return video
        return original(video, output_type=output_type, **kwargs)

    setattr(processor, method, postprocess)


F = TypeVar("F", bound="ClipFrames[Any]")


class ClipFrames(Sequence[NDArray[T]]):
    """The frames of a decoder output (b, c, f, h, w), each converted when indexed.

    Slicing is a view over the same tensor; a negative index counts from the end.
    """

    def __init__(self, video: torch.Tensor) -> None:
        self._video = video[0] if video.dim() == 5 else video  # (c, f, h, w)

    def __len__(self) -> int:
        return int(self._video.shape[1])

    @overload
    def __getitem__(self, index: int) -> NDArray[T]: ...

    @overload
    def __getitem__(self: F, index: slice) -> F: ...

    def __getitem__(self: F, index: int | slice) -> NDArray[T] | F:
        if isinstance(index, slice):
            view = copy.copy(self)
            view._video = self._video[:, index]
            return view
        return self._convert(self._frame(index))

    def _frame(self, index: int) -> torch.Tensor:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame {index} of {n}")
        return self._video[:, index]

    def _convert(self, frame: torch.Tensor) -> NDArray[T]:
        """One (c, h, w) slice of the decoder output as an (h, w, c) array."""
        raise NotImplementedError


class LinearFrames(ClipFrames[np.float32]):
    """HDR frames: scene-linear (h, w, 3) float32, >= 0, by the pipeline's own LogC3 decoding."""

    def __init__(self, video: torch.Tensor, postprocess: Callable[..., torch.Tensor]) -> None:
        super().__init__(video)
        self._postprocess = postprocess  # the HDR processor's postprocess_hdr_video

    def _convert(self, frame: torch.Tensor) -> NDArray[np.float32]:
        with torch.no_grad():
            one = frame[None, :, None]  # (1, c, 1, h, w): a clip of one frame
            linear = self._postprocess(one, output_type="pt")[0, 0]  # (h, w, c)
            return np.asarray(linear.clamp_(min=0).cpu().numpy(), dtype=np.float32)


class DecodedFrames(ClipFrames[np.uint8]):
    """Frames in [-1, 1] as (h, w, 3) uint8.

    :meth:`video_frame` hands the same pixels to the encoder as a planar ``gbrp``
    frame, which skips the interleaving copy (3 of the 9 ms a 720p frame costs)
    since swscale reads planes as fast as packed RGB. Conversion happens on the
    tensor's device (a GPU sends a quarter of the bytes) into buffers reused from
    frame to frame. Values round as diffusers' ``np`` output followed by
    ``* 255 + 0.5`` and a cast would.
    """

    def __init__(self, video: torch.Tensor) -> None:
        super().__init__(video)
        self._scratch: tuple[torch.Tensor, torch.Tensor] | None = None

    def _convert(self, frame: torch.Tensor) -> NDArray[np.uint8]:
        return np.ascontiguousarray(self._planes(frame).transpose(1, 2, 0))

    def video_frame(self, index: int) -> av.VideoFrame:
        """Frame ``index`` as a new planar RGB (gbrp) frame for the encoder."""
        planes = self._planes(self._frame(index))
        _, h, w = planes.shape
        frame = av.VideoFrame(w, h, "gbrp")
        for plane, channel in zip(frame.planes, (1, 2, 0), strict=True):  # G, B, R
            data = planes[channel]
            if plane.line_size != w:  # rows padded for alignment
                data = np.pad(data, ((0, 0), (0, plane.line_size - w)))
            plane.update(data)
        return frame

    def video_frames(self) -> Iterator[av.VideoFrame]:
        for i in range(len(self)):
            yield self.video_frame(i)

    def _planes(self, source: torch.Tensor) -> NDArray[np.uint8]:
        """(3, h, w) uint8, valid until the next call (it lives in a reused buffer)."""
        if self._scratch is None:
            self._scratch = (
                torch.empty(source.shape, dtype=torch.float32, device=source.device),
                torch.empty(source.shape, dtype=torch.uint8, device=source.device),
            )
        scaled, rgb = self._scratch
        with torch.no_grad():
            torch.mul(source, 127.5, out=scaled)
            rgb.copy_(scaled.add_(128.0).clamp_(0.0, 255.0))  # the cast truncates: +0.5 rounds
        return np.asarray(rgb.cpu().numpy())
