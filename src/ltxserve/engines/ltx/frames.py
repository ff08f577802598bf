"""The VAE's decoded video, handed to the encoder one uint8 frame at a time.

diffusers' own ``output_type="np"``/``"pt"`` post-processing turns the whole
decoded clip into [0, 1] floats (a strided pass over a permuted view, then a
stacked copy) before anything can be encoded: at 720p that is 2.2 s and two
clip-sized float copies on one CPU thread, half the VAE decode's own time. The
engine's pipelines instead learn ``output_type=RAW`` (:func:`allow_raw_output`),
which returns the decoder's output as it is; :class:`DecodedFrames`
then converts a frame to uint8 when the writer asks for it, so conversion runs
frame by frame next to the encoder and no second copy of the clip is ever made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import av
import numpy as np
import torch
from numpy.typing import NDArray

RAW = "ltxserve-raw"


def allow_raw_output(pipe: Any) -> None:
    """Let ``pipe(output_type=RAW)`` return the decoder output as it is.

    The pipeline's own processor keeps its config and every other output type; only
    its ``postprocess_video`` learns RAW. (Patched on the instance, not subclassed, so
    this module does not import diffusers before the loader has set offline mode.)
    """
    processor = pipe.video_processor
    original = processor.postprocess_video

    def postprocess_video(video: torch.Tensor, output_type: str = "np", **kwargs: Any) -> Any:
        if output_type == RAW:
            return video
        return original(video, output_type=output_type, **kwargs)

    processor.postprocess_video = postprocess_video


class DecodedFrames(Sequence[NDArray[np.uint8]]):
    """Frames of a decoder output (b, 3, f, h, w) in [-1, 1], as uint8 on demand.

    ``frames[i]`` is an (h, w, 3) array; :meth:`video_frame` hands the same pixels to
    the encoder as a planar ``gbrp`` frame, which skips the interleaving copy (3 of
    the 9 ms a 720p frame costs) since swscale reads planes as fast as packed RGB.
    Conversion happens on the tensor's device (a GPU sends a quarter of the bytes)
    into buffers reused from frame to frame; slicing is a view. Values round as
    diffusers' ``np`` output followed by ``* 255 + 0.5`` and a cast would.
    """

    def __init__(self, video: torch.Tensor) -> None:
        self._video = video[0] if video.dim() == 5 else video  # (3, f, h, w)
        self._scratch: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return int(self._video.shape[1])

    @overload
    def __getitem__(self, index: int) -> NDArray[np.uint8]: ...

    @overload
    def __getitem__(self, index: slice) -> DecodedFrames: ...

    def __getitem__(self, index: int | slice) -> NDArray[np.uint8] | DecodedFrames:
        if isinstance(index, slice):
            return DecodedFrames(self._video[:, index])
        return np.ascontiguousarray(self._planes(index).transpose(1, 2, 0))

    def __iter__(self) -> Iterator[NDArray[np.uint8]]:
        for i in range(len(self)):
            yield self[i]

    def video_frame(self, index: int) -> av.VideoFrame:
        """Frame ``index`` as a new planar RGB (gbrp) frame for the encoder."""
        planes = self._planes(index)
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

    def _planes(self, index: int) -> NDArray[np.uint8]:
        """(3, h, w) uint8, valid until the next call (it lives in a reused buffer)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame {index} of {n}")
        source = self._video[:, index]
        if self._scratch is None:
            self._scratch = (torch.empty(source.shape, dtype=torch.float32, device=source.device),
                             torch.empty(source.shape, dtype=torch.uint8, device=source.device))
        scaled, rgb = self._scratch
        with torch.no_grad():
            torch.mul(source, 127.5, out=scaled)
            rgb.copy_(scaled.add_(128.0).clamp_(0.0, 255.0))  # the cast truncates: +0.5 rounds
        return np.asarray(rgb.cpu().numpy())
