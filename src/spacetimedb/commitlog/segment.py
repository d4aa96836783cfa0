"""Checking one segment file: header, offset index, and the commits from a trusted point to the end.

`scan_segment` is what `Commitlog.open` (and the read-only inspection) runs on each segment. It never
modifies anything; it reports what it found, including the index entries a rebuild should write.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import CommitlogCorruptError, CommitlogFormatError
from .format import (
    INDEX_ENTRY,
    INDEX_HEADER_LEN,
    SEGMENT_HEADER_LEN,
    BadCommit,
    FormatProblem,
    SegmentHeader,
    check_commit,
    decode_index_header,
    decode_segment_header,
    find_valid_commit,
    iter_commits,
)
from .index import OffsetIndex, read_index_file

# How many index entries, newest first, to try before giving up on an index and rebuilding it.
_INDEX_ENTRIES_TO_TRY = 8


@dataclass(frozen=True)
class TornTail:
    """Bytes at the end of the newest segment that are not a complete, valid commit."""

    segment_path: Path
    byte_position: int  # where the valid data ends (the file is cut here)
    bytes_truncated: int
    offset: int  # the transaction offset the lost commit would have started at
    reason: str


@dataclass
class SegmentScan:
    path: Path
    header: SegmentHeader
    file_size: int
    end_position: int  # byte just past the last valid commit
    next_offset: int
    last_epoch: int
    commits_scanned: int
    # The full index after the scan (None when only the last entry was read and it checked out).
    index: OffsetIndex | None
    # Why the index on disk cannot be used as is (missing, corrupt, lagging); None if it is fine.
    index_problem: str | None
    index_changed: bool
    torn_tail: TornTail | None

    @property
    def base_offset(self) -> int:
        return self.header.base_offset


class MappedSegment:
    """A read-only memory map of the first `length` bytes of a segment (plus a memoryview for checksums)."""

    def __init__(self, path: Path, length: int | None = None) -> None:
        self.path = path
        with open(path, "rb") as file:
            self.file_size = os.fstat(file.fileno()).st_size
            self.length = self.file_size if length is None else length
            if self.length > self.file_size:
                raise CommitlogCorruptError(
                    path, -1, f"segment is {self.file_size} bytes, expected at least {self.length}"
                )
            self.buf: mmap.mmap | bytes = (
                mmap.mmap(file.fileno(), self.length, access=mmap.ACCESS_READ) if self.length else b""
            )
        self.view = memoryview(self.buf)

    def close(self) -> None:
        self.view.release()
        if isinstance(self.buf, mmap.mmap):
            try:
                self.buf.close()
            except BufferError:
                # A slice is still referenced (e.g. by a traceback being handled); the map is released
                # when that goes away.
                pass


@contextmanager
def mapped_segment(path: Path, length: int | None = None) -> Iterator[MappedSegment]:
    segment = MappedSegment(path, length)
    try:
        yield segment
    finally:
        segment.close()


def read_segment_header(segment: MappedSegment, base_offset: int) -> SegmentHeader:
    """Decode the header and check it names the same base offset as the file name."""
    try:
        header = decode_segment_header(bytes(segment.buf[:SEGMENT_HEADER_LEN]))
    except FormatProblem as problem:
        if problem.unsupported:
            raise CommitlogFormatError(segment.path, problem.reason) from None
        raise CommitlogCorruptError(segment.path, base_offset, problem.reason, byte_position=0) from None
    if header.base_offset != base_offset:
        raise CommitlogCorruptError(
            segment.path,
            base_offset,
            f"segment header says it starts at offset {header.base_offset}, its file name says {base_offset}",
            byte_position=0,
        )
    return header


def read_last_index_entry(path: Path, base_offset: int) -> tuple[int, int] | None:
    """Header check plus the last entry of an index file, without reading the rest of it."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if decode_index_header(file.read(INDEX_HEADER_LEN)) != base_offset:
            raise FormatProblem("index belongs to another segment")
        body = size - INDEX_HEADER_LEN
        if body % INDEX_ENTRY.size:
            raise FormatProblem(f"index has a partial entry ({body % INDEX_ENTRY.size} trailing bytes)")
        if body == 0:
            return None
        key, position = INDEX_ENTRY.unpack(os.pread(file.fileno(), INDEX_ENTRY.size, size - INDEX_ENTRY.size))
    if key <= base_offset:
        raise FormatProblem(f"index entry key {key} is not past the segment start {base_offset}")
    return key, position


def classify_bad_commit(segment: MappedSegment, bad: BadCommit, end: int) -> TornTail:
    """A bad commit is a torn tail only if no valid commit follows it; otherwise the log is corrupt."""
    follower = find_valid_commit(segment.buf, segment.view, bad.position, end, bad.expected_offset)
    if follower is not None:
        raise CommitlogCorruptError(
            segment.path,
            bad.expected_offset,
            f"{bad.reason}; a valid commit follows at byte {follower}, so this is not a torn write",
            byte_position=bad.position,
        )
    return TornTail(segment.path, bad.position, end - bad.position, bad.expected_offset, bad.reason)


def scan_segment(
    path: Path,
    base_offset: int,
    index_interval: int,
    *,
    load_full_index: bool,
    force_full_scan: bool,
    tolerate_torn_tail: bool,
) -> SegmentScan:
    """Check a segment from its newest verifiable index entry (or its header) to the end of the file.

    `load_full_index` reads the whole index (needed for the segment that is written next); otherwise only
    its last entry is read. With `tolerate_torn_tail` a bad final commit is reported as a torn tail;
    without it any bad commit raises `CommitlogCorruptError`.
    """
    index_path = path.with_name(path.name.removesuffix(".stdb.log") + ".stdb.ofs")
    with mapped_segment(path) as segment:
        if segment.file_size < SEGMENT_HEADER_LEN:
            raise CommitlogCorruptError(
                path,
                base_offset,
                f"file of {segment.file_size} bytes is too short for a segment header",
                byte_position=0,
            )
        header = read_segment_header(segment, base_offset)
        index, problem = _load_index(index_path, base_offset, load_full_index)
        on_disk = index.entries() if index is not None and load_full_index else None
        start = None
        if problem is None and not force_full_scan:
            start = _trusted_start(segment, header, index, entries_may_lead=tolerate_torn_tail)
            if start is None:
                problem = "index entries do not match the segment"
        if start is None:
            index = OffsetIndex()
            start = (SEGMENT_HEADER_LEN, base_offset)
        # Entries are only worth collecting when the whole index is in hand (else they would be a fragment).
        collect = index if (problem is not None or load_full_index) else None
        scan = _scan_from(segment, header, collect, start, index_interval, tolerate_torn_tail)
        scan.index_problem = problem
        scan.index_changed = collect is not None and (problem is not None or collect.entries() != on_disk)
        return scan


def _load_index(index_path: Path, base_offset: int, full: bool) -> tuple[OffsetIndex | None, str | None]:
    try:
        if full:
            return read_index_file(index_path, base_offset), None
        last = read_last_index_entry(index_path, base_offset)
        return OffsetIndex([last] if last else []), None
    except FileNotFoundError:
        return None, "index file missing"
    except FormatProblem as problem:
        return None, f"index corrupt: {problem.reason}"
    except OSError as exc:
        return None, f"index unreadable: {exc}"


def _trusted_start(
    segment: MappedSegment, header: SegmentHeader, index: OffsetIndex | None, *, entries_may_lead: bool
) -> tuple[int, int] | None:
    """(byte position, offset) of the newest index entry that points at a valid commit with that offset.

    Entries past it are dropped from `index`. In the segment being written, entries pointing past the end
    of the file are expected after a crash (the index and the data reach the disk in either order) and
    are dropped too; in a sealed segment they mean the index is wrong. Returns None when the index cannot
    be trusted.
    """
    assert index is not None
    if not index.keys:
        return SEGMENT_HEADER_LEN, header.base_offset
    if index.positions[-1] >= segment.file_size and not entries_may_lead:
        return None
    tried = 0
    for i in range(len(index.keys) - 1, -1, -1):
        key, position = index.keys[i], index.positions[i]
        if position >= segment.file_size:
            continue
        checked = check_commit(segment.buf, segment.view, position, segment.file_size, key, header.epoch)
        if not isinstance(checked, str):
            index.drop_from(i + 1)
            return position, key
        tried += 1
        if tried >= _INDEX_ENTRIES_TO_TRY:
            return None
    if tried == 0:  # every entry points past the end of the file: nothing was lost but the lead
        index.drop_from(0)
        return SEGMENT_HEADER_LEN, header.base_offset
    return None


def _scan_from(
    segment: MappedSegment,
    header: SegmentHeader,
    index: OffsetIndex | None,
    start: tuple[int, int],
    index_interval: int,
    tolerate_torn_tail: bool,
) -> SegmentScan:
    position, offset = start
    last_indexed = position
    end_position, next_offset, last_epoch, commits = position, offset, header.epoch, 0
    torn: TornTail | None = None
    try:
        for commit in iter_commits(
            segment.buf, segment.view, position, segment.file_size, offset, header.epoch
        ):
            if index is not None and commit.position - last_indexed >= index_interval:
                index.append(commit.min_tx_offset, commit.position)
                last_indexed = commit.position
            end_position, next_offset, last_epoch = commit.end, commit.min_tx_offset + commit.n, commit.epoch
            commits += 1
    except BadCommit as bad:
        if not tolerate_torn_tail:
            raise CommitlogCorruptError(
                segment.path, bad.expected_offset, bad.reason, byte_position=bad.position
            ) from None
        torn = classify_bad_commit(segment, bad, segment.file_size)
    return SegmentScan(
        path=segment.path,
        header=header,
        file_size=segment.file_size,
        end_position=end_position,
        next_offset=next_offset,
        last_epoch=last_epoch,
        commits_scanned=commits,
        index=index,
        index_problem=None,
        index_changed=False,
        torn_tail=torn,
    )
