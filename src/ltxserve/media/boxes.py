"""A bounded pre-check of an ISO BMFF file's (MP4, MOV, M4A) sample tables, before FFmpeg.

FFmpeg's mov demuxer allocates its sample index from what the header claims: a
3.9 KB MP4 whose ``stsz`` box says "89,000,000 samples of 1 byte" made it build a
1.1 GB index while opening the file, before any check of ours ran (issue 17).
Nothing FFmpeg offers bounds that, so this module walks the box tree itself,
reading only box headers and table counts (seeks, never the media), and refuses
a file whose claims the bytes cannot hold:

- a box we descend into, or read a table from, must fit inside its parent;
- a table's entry count times its entry size must fit inside its box;
- a track's sample count (``stsz``/``stz2``; ``trun`` in fragments) and the
  samples counted by ``stts`` and ``ctts`` may not exceed the file's size in
  bytes (every sample takes at least one byte of media data), nor may
  constant-size samples add up to more than the file.

The walk is bounded too: at most ``MAX_BOXES`` boxes, ``MAX_DEPTH`` levels, and
table reads in chunks, so its own cost is linear in the file and its memory is
constant. Anything else odd is left to FFmpeg, which still opens the file after.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

MAX_BOXES = 100_000
MAX_DEPTH = 10
CHUNK = 64 * 1024

# boxes whose children we walk
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"moof", b"traf", b"mvex"}
# full boxes holding "entry_count, entries[entry_count]" with a fixed entry size
# (elst and sbgp depend on version: handled below)
TABLES = {b"stts": 8, b"ctts": 8, b"stsc": 12, b"stco": 4, b"co64": 8, b"stss": 4, b"stps": 4}


class BoxProblem(Exception):
    """The file's boxes claim more than its bytes hold; ``str()`` says what."""


@dataclass
class _Walk:
    f: BinaryIO
    file_size: int
    boxes: int = 0
    fragment_samples: int = 0

    def read(self, offset: int, n: int) -> bytes:
        self.f.seek(offset)
        data = self.f.read(n)
        if len(data) < n:
            raise BoxProblem(f"a box header at byte {offset} is cut off")
        return data


def check_sample_tables(f: BinaryIO, file_size: int) -> None:
    """Raise BoxProblem if the box tree of ``f`` claims more than ``file_size`` bytes hold."""
    walk = _Walk(f, file_size)
    _children(walk, 0, file_size, 0, top=True)


def _children(walk: _Walk, start: int, end: int, depth: int, *, top: bool = False) -> None:
    if depth > MAX_DEPTH:
        raise BoxProblem("boxes are nested too deeply")
    pos = start
    while pos + 8 <= end:
        walk.boxes += 1
        if walk.boxes > MAX_BOXES:
            raise BoxProblem(f"the file has more than {MAX_BOXES} boxes")
        size, kind = struct.unpack(">I4s", walk.read(pos, 8))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", walk.read(pos + 8, 8))[0]
            header = 16
        elif size == 0:  # "to the end of the enclosing box / file"
            size = end - pos
        interesting = (
            kind in CONTAINERS
            or kind in TABLES
            or kind in (b"stsz", b"stz2", b"trun", b"elst", b"sbgp")
        )
        if size < header or pos + size > end:
            if not interesting and top:
                return  # e.g. a truncated mdat: FFmpeg's checks say "truncated" better
            raise BoxProblem(f"its {_name(kind)} box claims {size} bytes; only {end - pos} remain")
        body, body_end = pos + header, pos + size
        if kind in CONTAINERS:
            _children(walk, body, body_end, depth + 1)
            if kind == b"moof" and walk.fragment_samples > walk.file_size:
                raise _too_many("trun", walk.fragment_samples, walk.file_size)
        elif interesting:
            _table(walk, kind, body, body_end)
        pos += size


def _name(kind: bytes) -> str:
    return kind.decode("latin-1") if kind.isascii() and kind.isalnum() else repr(kind)


def _too_many(kind: str, count: int, file_size: int) -> BoxProblem:
    return BoxProblem(
        f"its {kind} box claims {count} samples; a {file_size} byte file "
        f"cannot hold more than {file_size}"
    )


def _table(walk: _Walk, kind: bytes, body: int, end: int) -> None:
    if end - body < 8:
        raise BoxProblem(f"its {_name(kind)} box is too short")
    version_flags, count = struct.unpack(">II", walk.read(body, 8))
    version, flags = version_flags >> 24, version_flags & 0xFFFFFF
    room = end - body - 8
    first = body + 8
    if kind == b"stsz":
        # sample_size, sample_count: a constant size needs no table
        sample_size, count = struct.unpack(">II", walk.read(body + 4, 8))
        room = end - body - 12
        if sample_size == 0:
            _fits(kind, count, 4, room)
        elif count * sample_size > walk.file_size:
            raise BoxProblem(
                f"its stsz box claims {count} samples of {sample_size} bytes; "
                f"the file has {walk.file_size} bytes"
            )
        if count > walk.file_size:
            raise _too_many("stsz", count, walk.file_size)
        return
    if kind == b"stz2":
        field_size, count = struct.unpack(">II", walk.read(body + 4, 8))
        field_size &= 0xFF
        if field_size not in (4, 8, 16):
            raise BoxProblem(f"its stz2 box has a field size of {field_size} bits")
        if (count * field_size + 7) // 8 > end - body - 12:
            raise BoxProblem(f"its stz2 box claims {count} entries; the box holds fewer")
        if count > walk.file_size:
            raise _too_many("stz2", count, walk.file_size)
        return
    if kind == b"trun":
        per_sample = 4 * bin(flags & 0xF00).count("1")
        fixed = 4 * ((flags & 0x1) + ((flags >> 2) & 0x1))
        if per_sample:
            _fits(kind, count, per_sample, room - fixed)
        walk.fragment_samples += count
        if walk.fragment_samples > walk.file_size:
            raise _too_many("trun", walk.fragment_samples, walk.file_size)
        return
    if kind == b"elst":
        _fits(kind, count, 20 if version == 1 else 12, room)
        return
    if kind == b"sbgp":
        # grouping_type (and in version 1 grouping_type_parameter) come before the count
        at = body + (12 if version == 1 else 8)
        if end - at < 4:
            raise BoxProblem("its sbgp box is too short")
        count = struct.unpack(">I", walk.read(at, 4))[0]
        _fits(kind, count, 8, end - at - 4)
        return
    entry = TABLES[kind]
    _fits(kind, count, entry, room)
    if kind in (b"stts", b"ctts"):
        total = _sum_counts(walk, first, count)
        if total > walk.file_size:
            raise _too_many(_name(kind), total, walk.file_size)


def _fits(kind: bytes, count: int, entry: int, room: int) -> None:
    if count * entry > room:
        raise BoxProblem(
            f"its {_name(kind)} box claims {count} entries of {entry} bytes; "
            f"it holds {max(0, room)} bytes"
        )


def _sum_counts(walk: _Walk, offset: int, entries: int) -> int:
    """The sum of the first field of ``entries`` (count, value) pairs, read in chunks."""
    total = 0
    left = entries
    walk.f.seek(offset)
    while left:
        n = min(left, CHUNK // 8)
        data = walk.f.read(n * 8)
        if len(data) < n * 8:
            raise BoxProblem("a sample table is cut off")
        total += sum(c for c, _ in struct.iter_unpack(">II", data))
        left -= n
    return total
