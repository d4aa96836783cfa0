"""Byte layout of segment headers, commits and offset-index files (see docs/commitlog-format.md).

Everything here is pure: functions take bytes (or any buffer) and return values or raise. File handling
lives in `segment.py` and `index.py`.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from crc32c import crc32c

FORMAT_VERSION = 1
CHECKSUM_ALGORITHM_CRC32C = 0

# ---------------------------------------------------------------------------------------------------
# Segment header: magic, version, checksum algorithm, reserved, base offset, epoch, CRC32C of the rest.

SEGMENT_MAGIC = b"STDBCLOG"
_SEGMENT_HEADER_BODY = struct.Struct("<8sBBHQQ")
SEGMENT_HEADER_LEN = _SEGMENT_HEADER_BODY.size + 4

# ---------------------------------------------------------------------------------------------------
# Commit: magic, min_tx_offset, epoch, record count, payload length | payload | CRC32C(header + payload).
# The per-commit magic lets a reader that hit a bad commit find the next good one with a fast byte
# search, which is how a torn tail is told apart from corruption in the middle of a segment.

COMMIT_MAGIC = b"\xc3\x9f\x5b\xe1"
COMMIT_HEADER = struct.Struct("<4sQQHI")
COMMIT_HEADER_LEN = COMMIT_HEADER.size
# What commit parsing reads from: bytes, a view of them, or a segment file mapped into memory.
ReadableBuffer = bytes | memoryview | mmap.mmap

CHECKSUM = struct.Struct("<I")
COMMIT_FRAMING_LEN = COMMIT_HEADER_LEN + CHECKSUM.size
MAX_RECORDS_PER_COMMIT = 0xFFFF
MAX_COMMIT_PAYLOAD: Final = 0xFFFF_FFFF
MAX_OFFSET = 0xFFFF_FFFF_FFFF_FFFF
_RECORD_LEN = struct.Struct("<I")

# ---------------------------------------------------------------------------------------------------
# Offset index: header (magic, version, base offset, CRC32C) then 16-byte entries (tx offset, byte position).

INDEX_MAGIC = b"STDBCOFS"
_INDEX_HEADER_BODY = struct.Struct("<8sB3xQ")
INDEX_HEADER_LEN = _INDEX_HEADER_BODY.size + 4
INDEX_ENTRY = struct.Struct("<QQ")

SEGMENT_SUFFIX = ".stdb.log"
INDEX_SUFFIX = ".stdb.ofs"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.stdb\.log$")


class FormatProblem(Exception):
    """Raised by the pure decoders; callers turn it into a `CommitlogCorruptError` naming the file."""

    def __init__(self, reason: str, *, unsupported: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # True when the bytes are intact but describe a version/algorithm this code cannot read.
        self.unsupported = unsupported


class SegmentHeader(NamedTuple):
    base_offset: int
    epoch: int
    version: int = FORMAT_VERSION
    checksum_algorithm: int = CHECKSUM_ALGORITHM_CRC32C


def segment_file_name(base_offset: int) -> str:
    return f"{base_offset:020d}{SEGMENT_SUFFIX}"


def index_file_name(base_offset: int) -> str:
    return f"{base_offset:020d}{INDEX_SUFFIX}"


def parse_segment_file_name(name: str) -> int | None:
    match = _SEGMENT_NAME.match(name)
    return int(match.group(1)) if match else None


def list_segment_files(directory: Path) -> list[tuple[int, Path]]:
    """All `<offset>.stdb.log` files of `directory`, sorted by offset; other files are ignored."""
    found = []
    for entry in directory.iterdir():
        base = parse_segment_file_name(entry.name)
        if base is not None and entry.is_file():
            found.append((base, entry))
    found.sort()
    return found


def encode_segment_header(base_offset: int, epoch: int) -> bytes:
    body = _SEGMENT_HEADER_BODY.pack(
        SEGMENT_MAGIC, FORMAT_VERSION, CHECKSUM_ALGORITHM_CRC32C, 0, base_offset, epoch
    )
    return body + CHECKSUM.pack(crc32c(body))


def decode_segment_header(buf: bytes | memoryview) -> SegmentHeader:
    if len(buf) < SEGMENT_HEADER_LEN:
        raise FormatProblem(f"segment header truncated: {len(buf)} of {SEGMENT_HEADER_LEN} bytes")
    magic, version, algorithm, reserved, base_offset, epoch = _SEGMENT_HEADER_BODY.unpack_from(buf, 0)
    if magic != SEGMENT_MAGIC:
        raise FormatProblem(f"bad segment magic {bytes(magic)!r}")
    (stored_crc,) = CHECKSUM.unpack_from(buf, _SEGMENT_HEADER_BODY.size)
    if crc32c(buf[: _SEGMENT_HEADER_BODY.size]) != stored_crc:
        raise FormatProblem("segment header checksum mismatch")
    if reserved != 0:
        raise FormatProblem(f"segment header reserved field is {reserved}, expected 0")
    if version != FORMAT_VERSION:
        raise FormatProblem(f"unsupported log format version {version}", unsupported=True)
    if algorithm != CHECKSUM_ALGORITHM_CRC32C:
        raise FormatProblem(f"unsupported checksum algorithm {algorithm}", unsupported=True)
    return SegmentHeader(base_offset, epoch, version, algorithm)


def encode_index_header(base_offset: int) -> bytes:
    body = _INDEX_HEADER_BODY.pack(INDEX_MAGIC, FORMAT_VERSION, base_offset)
    return body + CHECKSUM.pack(crc32c(body))


def decode_index_header(buf: bytes | memoryview) -> int:
    """Return the base offset recorded in an index header."""
    if len(buf) < INDEX_HEADER_LEN:
        raise FormatProblem("index header truncated")
    magic, version, base_offset = _INDEX_HEADER_BODY.unpack_from(buf, 0)
    (stored_crc,) = CHECKSUM.unpack_from(buf, _INDEX_HEADER_BODY.size)
    if magic != INDEX_MAGIC or crc32c(buf[: _INDEX_HEADER_BODY.size]) != stored_crc:
        raise FormatProblem("bad index header")
    if version != FORMAT_VERSION:
        raise FormatProblem(f"unsupported index version {version}", unsupported=True)
    return int(base_offset)


# ---------------------------------------------------------------------------------------------------
# Commits


def join_records(records: Sequence[bytes]) -> bytes:
    """Payload of a commit holding several records: every record but the last is u32-length-prefixed.

    A one-record commit's payload is therefore the record itself, with no overhead.
    """
    if len(records) == 1:
        return bytes(records[0])
    parts: list[bytes] = []
    for record in records[:-1]:
        parts.append(_RECORD_LEN.pack(len(record)))
        parts.append(record)
    parts.append(records[-1])
    return b"".join(parts)


def split_records(buf: ReadableBuffer, start: int, end: int, n: int) -> list[bytes]:
    """Inverse of `join_records` for the payload `buf[start:end]`; FormatProblem if inconsistent."""
    records = []
    pos = start
    for _ in range(n - 1):
        if pos + 4 > end:
            raise FormatProblem("record length prefix runs past the commit payload")
        (length,) = _RECORD_LEN.unpack_from(buf, pos)
        pos += 4
        if pos + length > end:
            raise FormatProblem("record runs past the commit payload")
        records.append(bytes(buf[pos : pos + length]))
        pos += length
    records.append(bytes(buf[pos:end]))
    return records


def encode_commit(min_tx_offset: int, epoch: int, records: Sequence[bytes]) -> bytes:
    """One framed commit holding `records` (tests and tools; the writer inlines this)."""
    payload = join_records(records)
    head = COMMIT_HEADER.pack(COMMIT_MAGIC, min_tx_offset, epoch, len(records), len(payload))
    return head + payload + CHECKSUM.pack(crc32c(payload, crc32c(head)))


class CommitView(NamedTuple):
    """A verified commit inside a buffer: its records are `buf[payload_start:payload_end]`."""

    position: int
    min_tx_offset: int
    epoch: int
    n: int
    payload_start: int
    payload_end: int

    @property
    def end(self) -> int:
        return self.payload_end + CHECKSUM.size


class BadCommit(Exception):
    """No valid commit at `position`, where offset `expected_offset` should start."""

    def __init__(self, position: int, expected_offset: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.expected_offset = expected_offset
        self.reason = reason


def check_commit(
    buf: ReadableBuffer, view: memoryview, pos: int, end: int, expected_offset: int | None, min_epoch: int
) -> CommitView | str:
    """Decode and verify the commit at `pos`; return it, or a string saying what is wrong.

    `view` must be a memoryview of `buf` (checksumming a slice of it copies nothing).
    """
    if end - pos < COMMIT_FRAMING_LEN:
        return f"only {end - pos} bytes left, a commit needs at least {COMMIT_FRAMING_LEN}"
    magic, min_tx_offset, epoch, n, length = COMMIT_HEADER.unpack_from(buf, pos)
    if magic != COMMIT_MAGIC:
        return "no commit magic"
    payload_end = pos + COMMIT_HEADER_LEN + length
    if payload_end + CHECKSUM.size > end:
        return f"commit of {length} payload bytes runs past the end of the data ({end - pos} bytes left)"
    if crc32c(view[pos:payload_end]) != CHECKSUM.unpack_from(buf, payload_end)[0]:
        return "checksum mismatch"
    if n == 0:
        return "commit holds no records"
    if expected_offset is not None and min_tx_offset != expected_offset:
        return f"commit starts at offset {min_tx_offset}, expected {expected_offset}"
    if epoch < min_epoch:
        return f"epoch went backwards ({epoch} < {min_epoch})"
    if min_tx_offset + n - 1 > MAX_OFFSET:
        return "transaction offsets overflow u64"
    return CommitView(pos, min_tx_offset, epoch, n, pos + COMMIT_HEADER_LEN, payload_end)


def iter_commits(
    buf: ReadableBuffer, view: memoryview, pos: int, end: int, expected_offset: int, min_epoch: int
) -> Iterator[CommitView]:
    """Yield consecutive verified commits from `pos` up to exactly `end`; raise BadCommit at the first bad one."""
    unpack_header = COMMIT_HEADER.unpack_from
    unpack_checksum = CHECKSUM.unpack_from
    header_len = COMMIT_HEADER_LEN
    while pos < end:
        # Fast path: one unpack, one checksum. Anything unusual goes through check_commit for a reason.
        if end - pos >= COMMIT_FRAMING_LEN:
            magic, min_tx_offset, epoch, n, length = unpack_header(buf, pos)
            payload_end = pos + header_len + length
            if (
                magic == COMMIT_MAGIC
                and min_tx_offset == expected_offset
                and n
                and epoch >= min_epoch
                and payload_end + 4 <= end
                and crc32c(view[pos:payload_end]) == unpack_checksum(buf, payload_end)[0]
            ):
                yield CommitView(pos, min_tx_offset, epoch, n, pos + header_len, payload_end)
                pos = payload_end + 4
                expected_offset += n
                min_epoch = epoch
                continue
        problem = check_commit(buf, view, pos, end, expected_offset, min_epoch)
        reason = problem if isinstance(problem, str) else "invalid commit"
        raise BadCommit(pos, expected_offset, reason)


def find_valid_commit(
    buf: ReadableBuffer, view: memoryview, bad_position: int, end: int, bad_offset: int
) -> int | None:
    """Position of the first valid commit after a bad one at `bad_position` (expected offset `bad_offset`).

    A candidate must pass its checksum and carry an offset that could follow the bad commit: greater than
    `bad_offset`, and not further ahead than the bytes in between could hold (a record takes at least 4
    bytes). The offset test keeps a commit frame that happens to sit inside a torn record's bytes from
    being mistaken for real data written after it.
    """
    find = buf.find  # type: ignore[union-attr]  # callers pass bytes or an mmap, both of which have find
    pos = find(COMMIT_MAGIC, bad_position + 1, end)
    while pos != -1:
        found = check_commit(buf, view, pos, end, None, 0)
        if not isinstance(found, str):
            most_records_between = (pos - bad_position) // 4 + 1
            if bad_offset < found.min_tx_offset <= bad_offset + most_records_between:
                return int(pos)
        pos = find(COMMIT_MAGIC, pos + 1, end)
    return None
