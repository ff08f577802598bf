"""Media bombs built in the test from a tiny real MP4: box counts patched to absurd claims."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from tests.core.media import mp4_bytes

CLAIMED_SAMPLES = 89_000_000  # what the reported 3.9 KB file claimed


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, bytes]]:
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        yield pos, size, kind
        pos += size


def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> int:
    for pos, size, kind in _boxes(data, start, len(data) if end is None else end):
        if kind == path[0]:
            return pos if len(path) == 1 else _find(data, path[1:], pos + 8, pos + size)
    raise LookupError(path)


def sample_table_bomb(stts: bool = True, stsz: bool = True) -> bytes:
    """A ~4 KB H.264 MP4 whose sample tables claim 89 million 1-byte samples.

    ``stsz`` switches the sample-size table to "constant size 1, 89M samples" (the
    claim FFmpeg builds its index from); ``stts`` makes the time-to-sample table's
    one entry claim as many.
    """
    data = bytearray(mp4_bytes(64, 36, 24, 8, audio=False))
    stbl = _find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl"])
    size = struct.unpack(">I", data[stbl : stbl + 4])[0]
    for pos, _size, kind in _boxes(bytes(data), stbl + 8, stbl + size):
        if kind == b"stsz" and stsz:
            struct.pack_into(">II", data, pos + 12, 1, CLAIMED_SAMPLES)
        if kind == b"stts" and stts:
            struct.pack_into(">I", data, pos + 16, CLAIMED_SAMPLES)
    return bytes(data)
