"""Encoding for the preview engine: deterministic writer settings and the frame loop.

x264's output depends on its thread count, so the writer pins it (slice threads:
the ``preview_threads`` setting, ``LTXSERVE_PREVIEW_THREADS``, default 2, which the
engine is built with): equal requests then give byte-equal files on any machine
with the same FFmpeg/x264 build and setting.

The loop renders the next frame on a helper thread while the current one is
encoded (numpy, Pillow and the encoder release the GIL), so rendering hides
behind encoding. At most ``DEPTH`` rendered frames wait in between.
"""

from __future__ import annotations

import ctypes
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
from numpy.typing import NDArray

from ltxserve.engines.base import ProgressCallback
from ltxserve.media.writer import VideoWriter
from ltxserve.media.yuv import Yuv420

PRESET = "ultrafast"
CRF = 18
DEPTH = 1
SWITCH_INTERVAL = 0.0002  # s; see prefetch()
RENDER_NICE = 10  # see lower_priority()

T = TypeVar("T")
AudioFn = Callable[[int, int], NDArray[np.float32]]


class PreviewWriter(VideoWriter):
    """VideoWriter with the preview engine's fixed encoder settings and a YUV input."""

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: int | Fraction,
        *,
        audio: bool = False,
        threads: int,
    ) -> None:
        # zerolatency: no lookahead queue, which at 4K saves x264 ~15 MB and changes
        # nothing else at the ultrafast preset (no B-frames there anyway)
        super().__init__(
            path,
            width,
            height,
            fps,
            audio=audio,
            preset=PRESET,
            crf=CRF,
            options={"tune": "zerolatency"},
            slice_threads=threads,
            engine="preview",
        )

    def __enter__(self) -> PreviewWriter:
        return self

    def write_yuv(self, image: Yuv420) -> None:
        """Encode a frame already in yuv420p at the output size (no conversion, no copy)."""
        frame = av.VideoFrame.from_numpy_buffer(image.data, format="yuv420p")
        self.write_video_frame(frame)


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc keeps big freed blocks otherwise).

    Called after a job's one-off drawing, so the encoder's buffers do not stack on
    top of memory that is free but still resident.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def lower_priority(nice: int = RENDER_NICE) -> None:
    """Lower the calling thread's scheduling priority (Linux: nice is per thread).

    The encoder's slice threads are the job's critical path: x264 waits for the
    slower of its slices every frame, so a renderer that takes a core from one of
    them stalls both. At a lower priority the renderer runs in the gaps the
    encoder leaves (it uses about 1.3 of 2 cores) and still gets the whole CPU
    whenever the encoder is waiting for it.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (OSError, AttributeError):  # not Linux, or not permitted: run at normal priority
        pass


def prefetch(items: Iterable[T], depth: int = DEPTH) -> Iterator[T]:
    """Iterate ``items`` on a helper thread, ``depth`` items ahead of the consumer.

    The helper thread runs at a lower priority (lower_priority()). While it
    runs, the interpreter's GIL switch interval is shortened: the
    encoder thread hands the GIL back and forth around every codec call, and with
    the default 5 ms it would wait that long behind the renderer each time.
    """
    q: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: int, value: object) -> bool:
        while not stop.is_set():
            try:
                q.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        lower_priority()
        try:
            for item in items:
                if not put(0, item):
                    return
            put(1, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(2, exc)

    thread = threading.Thread(target=work, name="preview-render", daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == 1:
                return
            if kind == 2:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def encode(
    writer: PreviewWriter,
    frames: Iterable[Yuv420 | av.VideoFrame],
    count: int,
    progress: ProgressCallback,
    audio: AudioFn | None = None,
) -> None:
    """Write exactly ``count`` frames and, when the writer has audio, the matching samples.

    Frames are Yuv420 images or decoded yuv420p frames at the output size (passed
    through without a copy).

    ``audio(start, n)`` is asked for consecutive sample ranges in order, one per
    frame (the samples that keep the sound level with the picture); without it the
    soundtrack is silence. It runs on the helper thread with the frames, so
    synthesis and decoding overlap the encoder too.
    """
    rate, fps = writer.audio_rate, writer.fps

    def items() -> Iterator[tuple[Yuv420 | av.VideoFrame, NDArray[np.float32] | None]]:
        pos = 0
        for i, image in enumerate(frames):
            if i >= count:
                return
            chunk = None
            if writer.has_audio:
                end = int((i + 1) * rate / fps)  # as VideoWriter.audio_samples_due counts
                chunk = audio(pos, end - pos) if audio else np.zeros((2, end - pos), np.float32)
                pos = end
            yield image, chunk

    written = 0
    for image, chunk in prefetch(items()):
        if isinstance(image, Yuv420):
            writer.write_yuv(image)
        else:
            image.pict_type = av.video.frame.PictureType.NONE  # let x264 place keyframes
            writer.write_video_frame(image)
        written += 1
        if chunk is not None:
            writer.write_audio(chunk)
        progress(written / count)
    if written < count:
        raise RuntimeError(f"renderer produced {written} of {count} frames")
