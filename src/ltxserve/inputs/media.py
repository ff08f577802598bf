"""What an input file really is: sniffed from its bytes, then probed, never trusted by name.

Each ``*_uri`` field takes one kind of media:

    image_uri, last_frame_uri   image   PNG, JPEG, WEBP
    video_uri                   video   MP4, MOV, MKV with H.264 or H.265
    audio_uri                   audio   WAV (PCM), MP3, M4A (AAC-LC), OGG (Vorbis)

``inspect`` checks the magic number first, then opens the file with Pillow
(images) or PyAV (audio and video) and insists that the two agree. Image
dimensions are checked from the header before any pixel is decoded, so a
decompression bomb costs nothing; then the image is decoded to catch truncation.
MP4, MOV and M4A files first have their sample tables checked against the file's
size (ltxserve.media.boxes), because FFmpeg allocates its index from them while
opening the file. Audio and video are demuxed packet by packet (no decoding, constant memory) to
count frames and measure duration, a truncated index shows up as missing packets,
and the first frame is decoded to prove the stream is usable. Every problem
raises InvalidRequestError naming the field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ltxserve.errors import InvalidRequestError
from ltxserve.media.boxes import BoxProblem, check_sample_tables

log = logging.getLogger(__name__)

FIELD_KIND = {
    "image_uri": "image",
    "last_frame_uri": "image",
    "audio_uri": "audio",
    "video_uri": "video",
}

IMAGE_FORMATS = ("png", "jpeg", "webp")
VIDEO_FORMATS = ("mp4", "mov", "mkv")
AUDIO_FORMATS = ("wav", "mp3", "m4a", "ogg")
VIDEO_CODECS = {"h264": "H.264", "hevc": "H.265"}

MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 50_000_000  # ~7000x7000: more than any generation resolution needs
MAX_VIDEO_LONG_SIDE = 3840  # 4K UHD, either orientation
MAX_VIDEO_SHORT_SIDE = 2160

_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


@dataclass(frozen=True)
class InputInfo:
    field: str
    kind: str  # image | video | audio
    format: str  # png jpeg webp | mp4 mov mkv | wav mp3 m4a ogg
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: Fraction | None = None
    frames: int | None = None
    duration: float | None = None
    has_audio: bool = False


def sniff(head: bytes) -> str | None:
    """The format a file's first bytes announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "mkv"
    if head[4:8] in _ISO_BOXES:
        brand = head[8:12] if head[4:8] == b"ftyp" else b""
        if brand == b"qt  ":
            return "mov"
        if brand in (b"M4A ", b"M4B "):
            return "m4a"
        return "mp4"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "wav": "WAV",
    "ogg": "OGG",
    "mkv": "MKV",
    "mov": "MOV",
    "mp4": "MP4",
    "m4a": "M4A",
    "mp3": "MP3",
}


def _unsupported(field: str, kind: str, fmt: str | None) -> InvalidRequestError:
    wanted = {
        "image": "a PNG, JPEG or WEBP image",
        "video": "an MP4, MOV or MKV video with H.264 or H.265",
        "audio": "WAV, MP3, M4A (AAC-LC) or OGG (Vorbis) audio",
    }[kind]
    seen = f"its content looks like {_NAMES[fmt]}" if fmt else "its content is not a known format"
    return InvalidRequestError(f"{field} must be {wanted}; {seen}")


def inspect(field: str, path: Path) -> InputInfo:
    """Identify and check one input file; raise InvalidRequestError naming ``field``."""
    kind = FIELD_KIND[field]
    try:
        size = path.stat().st_size
    except OSError:
        raise InvalidRequestError(f"{field}: the file could not be read") from None
    if size == 0:
        raise InvalidRequestError(f"{field}: the file is empty")
    with path.open("rb") as f:
        head = f.read(64)
        fmt = sniff(head)
        if fmt in ("mp4", "mov", "m4a"):
            # before FFmpeg sees it: its demuxer allocates from these claims
            try:
                check_sample_tables(f, size)
            except BoxProblem as exc:
                raise InvalidRequestError(
                    f"{field}: the file is corrupt or truncated ({exc})"
                ) from None
    try:
        if kind == "image":
            if fmt not in IMAGE_FORMATS:
                raise _unsupported(field, kind, fmt)
            return _image(field, path, fmt)
        if kind == "video":
            if fmt not in (*VIDEO_FORMATS, "m4a"):
                raise _unsupported(field, kind, fmt)
            return _video(field, path, "mp4" if fmt == "m4a" else fmt)
        if fmt not in (*AUDIO_FORMATS, "mp4", "mov"):
            raise _unsupported(field, kind, fmt)
        return _audio(field, path, "m4a" if fmt in ("mp4", "mov") else fmt)
    except InvalidRequestError:
        raise
    except MemoryError:
        raise InvalidRequestError(f"{field}: the file is too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the input's fault
        log.info("%s: unreadable %s input: %r", field, fmt, exc)
        raise InvalidRequestError(
            f"{field}: the file is corrupt or truncated and could not be decoded as "
            f"{_NAMES.get(fmt or '', kind)}"
        ) from None


# -- images -------------------------------------------------------------------


def _image(field: str, path: Path, fmt: str) -> InputInfo:
    from PIL import Image

    try:
        im = Image.open(path, formats=[fmt.upper()])
    except Image.DecompressionBombError:
        raise InvalidRequestError(
            f"{field}: the image is too large (at most {MAX_IMAGE_PIXELS} pixels and "
            f"{MAX_IMAGE_SIDE} pixels a side)"
        ) from None
    with im:
        w, h = im.size
        if w < 1 or h < 1:
            raise InvalidRequestError(f"{field}: the image has no pixels")
        if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE or w * h > MAX_IMAGE_PIXELS:
            raise InvalidRequestError(
                f"{field}: the image is {w}x{h}; images may have at most {MAX_IMAGE_PIXELS} "
                f"pixels and {MAX_IMAGE_SIDE} pixels a side"
            )
        im.load()  # decode now: a truncated or corrupt image fails here, not in the engine
    return InputInfo(field, "image", fmt, codec=fmt, width=w, height=h)


# -- audio and video ------------------------------------------------------------


def _open(path: Path) -> Any:
    import av

    return av.open(str(path), options={"probesize": str(8 * 1024 * 1024)})


def _container_matches(fmt: str, name: str) -> bool:
    names = set(name.split(","))
    if fmt in ("mp4", "mov", "m4a"):
        return "mov" in names or "mp4" in names
    if fmt == "mkv":
        return "matroska" in names
    return fmt in names


def _scan(container: Any, stream: Any) -> tuple[int, float | None]:
    """Demux every packet of ``stream``: (packet count, duration from timestamps)."""
    count = 0
    first: int | None = None
    end: int | None = None
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        count += 1
        if packet.pts is not None:
            first = packet.pts if first is None else min(first, packet.pts)
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    if first is None or end is None or stream.time_base is None:
        return count, None
    return count, float((end - max(first, 0)) * stream.time_base)


def _short_of(measured: float, declared: float | None) -> bool:
    """True when the data present falls clearly short of the duration a header declares."""
    return declared is not None and measured < declared - max(0.5, 0.1 * declared)


def _wav_truncated(path: Path) -> bool:
    """True when the RIFF ``data`` chunk claims more bytes than the file holds."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(12)
        while True:
            head = f.read(8)
            if len(head) < 8:
                return False
            cid, length = head[:4], int.from_bytes(head[4:], "little")
            if cid == b"data":
                # 0 and 0xFFFFFFFF mean "unknown" (streamed WAV): nothing to compare
                return 0 < length < 0xFFFFFFFF and f.tell() + length > size
            f.seek(length + (length & 1), 1)


def _decodes(path: Path, kind: str) -> bool:
    """True when the first frame of the first ``kind`` stream decodes."""
    return _first_rotation(path, kind) is not None


def _first_rotation(path: Path, kind: str) -> float | None:
    """The display rotation of the first ``kind`` frame (0 for audio); None: none decodes."""
    with _open(path) as container:
        stream = (container.streams.video if kind == "video" else container.streams.audio)[0]
        for frame in container.decode(stream):
            return float(getattr(frame, "rotation", 0.0))
    return None


def _video(field: str, path: Path, fmt: str) -> InputInfo:
    with _open(path) as container:
        if not _container_matches(fmt, container.format.name):
            raise _unsupported(field, "video", fmt)
        if not container.streams.video:
            raise InvalidRequestError(f"{field}: the file has no video stream")
        vs = container.streams.video[0]
        codec = vs.codec_context.name
        if codec not in VIDEO_CODECS:
            raise InvalidRequestError(
                f"{field}: the video codec is {codec}; only H.264 and H.265 are supported"
            )
        w, h = vs.codec_context.width, vs.codec_context.height
        if not w or not h:
            raise InvalidRequestError(f"{field}: the video has no frame size")
        if max(w, h) > MAX_VIDEO_LONG_SIDE or min(w, h) > MAX_VIDEO_SHORT_SIDE:
            raise InvalidRequestError(
                f"{field}: the video is {w}x{h}; inputs may be at most 3840x2160 (4K)"
            )
        rate = vs.average_rate or vs.guessed_rate
        declared = int(vs.frames or 0)
        has_audio = bool(container.streams.audio)
        fallback = (container.duration or 0) / 1_000_000 or None
        frames, duration = _scan(container, vs)
    if frames == 0:
        raise InvalidRequestError(f"{field}: the video has no frames")
    if declared and frames < declared:
        raise InvalidRequestError(
            f"{field}: the file is truncated ({frames} of {declared} frames present)"
        )
    fps = Fraction(rate) if rate else None
    if not fps and duration:
        fps = Fraction(frames / duration).limit_denominator(1001)
    if not fps:
        raise InvalidRequestError(f"{field}: the video's frame rate cannot be determined")
    if _short_of(float(frames / fps), fallback):
        raise InvalidRequestError(
            f"{field}: the file is truncated ({float(frames / fps):.2f} s of the "
            f"{fallback:.2f} s its header declares)"
        )
    from ltxserve.media.decode import quarter_turns

    rotation = _first_rotation(path, "video")
    if rotation is None:
        raise InvalidRequestError(f"{field}: no video frame could be decoded")
    if quarter_turns(rotation) % 2:  # a phone's portrait clip: say the size it plays at
        w, h = h, w
    return InputInfo(
        field,
        "video",
        fmt,
        codec=VIDEO_CODECS[codec],
        width=w,
        height=h,
        fps=fps,
        frames=frames,
        duration=float(frames / fps) if fps else duration or fallback,
        has_audio=has_audio,
    )


_AUDIO_CODECS = {"wav": "PCM", "mp3": "MP3", "m4a": "AAC-LC", "ogg": "Vorbis"}


def _audio_codec_ok(fmt: str, codec: str, profile: Any) -> bool:
    if fmt == "wav":
        return codec.startswith("pcm_")
    if fmt == "mp3":
        return codec in ("mp3", "mp3float")
    if fmt == "ogg":
        return codec == "vorbis"
    if fmt == "m4a":
        return codec == "aac" and str(profile or "LC").upper() == "LC"
    return False


def _audio(field: str, path: Path, fmt: str) -> InputInfo:
    with _open(path) as container:
        if not _container_matches(fmt, container.format.name):
            raise _unsupported(field, "audio", fmt)
        if not container.streams.audio:
            raise InvalidRequestError(f"{field}: the file has no audio stream")
        au = container.streams.audio[0]
        codec = au.codec_context.name
        if not _audio_codec_ok(fmt, codec, au.codec_context.profile):
            raise InvalidRequestError(
                f"{field}: {_NAMES[fmt]} audio must be {_AUDIO_CODECS[fmt]}; the stream is "
                f"{codec}{' ' + str(au.codec_context.profile) if au.codec_context.profile else ''}"
            )
        declared = int(au.frames or 0) if fmt == "m4a" else 0
        fallback = (container.duration or 0) / 1_000_000 or None
        packets, duration = _scan(container, au)
    if packets == 0:
        raise InvalidRequestError(f"{field}: the audio has no samples")
    if declared and packets < declared:
        raise InvalidRequestError(f"{field}: the file is truncated")
    if fmt == "wav" and _wav_truncated(path):
        raise InvalidRequestError(
            f"{field}: the file is truncated (its data chunk is shorter than its header says)"
        )
    if not _decodes(path, "audio"):
        raise InvalidRequestError(f"{field}: no audio could be decoded")
    return InputInfo(
        field,
        "audio",
        fmt,
        codec=_AUDIO_CODECS[fmt],
        duration=duration if duration is not None else fallback,
        has_audio=True,
    )
