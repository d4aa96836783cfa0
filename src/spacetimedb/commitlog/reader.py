"""Traversal: walking commits and transactions across segments, starting anywhere.

Every commit is checksummed as it is read, offsets must be contiguous within and across segments, and
the first problem raises `CommitlogCorruptError` naming the segment and position. The only exception is a
torn tail at the very end of the newest segment when reading a directory that was not opened for
writing (so its tail was never repaired): that ends the traversal with a warning, because a later open
will cut it off anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .errors import CommitlogCorruptError, CommitlogDecodeError, CommitlogError
from .format import SEGMENT_HEADER_LEN, BadCommit, SegmentHeader, check_commit, iter_commits, split_records
from .index import OffsetIndex, read_index_file
from .segment import MappedSegment, classify_bad_commit, read_segment_header
from .txdata import TxRecord, decode_tx_record

logger = logging.getLogger(__name__)

IndexLookup = Callable[[int], "tuple[int, int] | None"]


@dataclass(frozen=True)
class SegmentRef:
    """One segment as a traversal sees it."""

    base_offset: int
    path: Path
    # Bytes of the file that belong to the log; None means the whole file as it is now.
    length: int | None = None
    # In-memory index to seek with (the segment being written); None = load the index file if needed.
    index: OffsetIndex | None = None
    # The newest segment of a log nobody repaired: a bad final commit ends the traversal with a warning.
    tolerate_torn_tail: bool = False

    @property
    def index_path(self) -> Path:
        return self.path.with_name(self.path.name.removesuffix(".stdb.log") + ".stdb.ofs")


class Commit(NamedTuple):
    """A verified commit: `records` holds one payload per transaction, offsets `min_tx_offset` onwards."""

    min_tx_offset: int
    epoch: int
    records: list[bytes]
    segment_path: Path
    byte_position: int

    @property
    def next_offset(self) -> int:
        return self.min_tx_offset + len(self.records)


def iter_commits_from(segments: list[SegmentRef], offset: int) -> Iterator[Commit]:
    """Commits from the one containing `offset` to the end of the last segment."""
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if not segments:
        return
    first = _first_segment_for(segments, offset)
    expected: int | None = None
    min_epoch = 0
    for number, ref in enumerate(segments[first:]):
        if expected is not None and ref.base_offset != expected:
            raise CommitlogCorruptError(
                ref.path,
                expected,
                f"segment starts at offset {ref.base_offset} but the previous one ended at {expected}",
            )
        segment = MappedSegment(ref.path, ref.length)
        try:
            header = _checked_header(segment, ref)
            if header.epoch < min_epoch:
                raise CommitlogCorruptError(
                    ref.path, ref.base_offset, "segment epoch went backwards", byte_position=0
                )
            position, start_offset = SEGMENT_HEADER_LEN, ref.base_offset
            if number == 0 and offset > ref.base_offset:
                position, start_offset = _seek(segment, ref, offset, header.epoch)
            min_epoch = max(min_epoch, header.epoch)
            expected = start_offset
            commits = iter_commits(
                segment.buf, segment.view, position, segment.length, start_offset, min_epoch
            )
            try:
                for view in commits:
                    expected = view.min_tx_offset + view.n
                    min_epoch = view.epoch
                    if expected <= offset:
                        continue  # wholly before the requested offset (scanned past after a sparse seek)
                    try:
                        records = split_records(segment.buf, view.payload_start, view.payload_end, view.n)
                    except Exception as exc:
                        raise CommitlogCorruptError(
                            ref.path,
                            view.min_tx_offset,
                            f"commit records inconsistent: {exc}",
                            byte_position=view.position,
                        ) from None
                    yield Commit(view.min_tx_offset, view.epoch, records, ref.path, view.position)
            except BadCommit as bad:
                _handle_bad_commit(segment, ref, bad, is_last=ref is segments[-1])
                return
        finally:
            segment.close()


def iter_transactions_from(segments: list[SegmentRef], offset: int) -> Iterator[tuple[int, bytes]]:
    """(offset, payload) for every transaction from `offset` on."""
    for commit in iter_commits_from(segments, offset):
        tx_offset = commit.min_tx_offset
        for record in commit.records:
            if tx_offset >= offset:
                yield tx_offset, record
            tx_offset += 1


def fold_transactions_from(
    segments: list[SegmentRef], offset: int, visitor: Callable[[int, TxRecord], object]
) -> int:
    """Decode each transaction from `offset` on and hand it to `visitor(offset, record)`.

    Returns the offset after the last transaction visited (`offset` itself if there was none).
    """
    next_offset = offset
    for tx_offset, payload in iter_transactions_from(segments, offset):
        try:
            record = decode_tx_record(payload)
        except CommitlogDecodeError as exc:
            raise CommitlogDecodeError(f"transaction {tx_offset}: {exc}") from exc
        visitor(tx_offset, record)
        next_offset = tx_offset + 1
    return next_offset


def _first_segment_for(segments: list[SegmentRef], offset: int) -> int:
    if offset < segments[0].base_offset:
        raise CommitlogError(
            f"offset {offset} precedes the oldest segment, which starts at {segments[0].base_offset}"
        )
    first = 0
    for i, ref in enumerate(segments):
        if ref.base_offset <= offset:
            first = i
    return first


def _checked_header(segment: MappedSegment, ref: SegmentRef) -> SegmentHeader:
    if segment.length < SEGMENT_HEADER_LEN:
        raise CommitlogCorruptError(
            ref.path,
            ref.base_offset,
            f"file of {segment.length} bytes has no complete header",
            byte_position=0,
        )
    return read_segment_header(segment, ref.base_offset)


def _seek(segment: MappedSegment, ref: SegmentRef, offset: int, epoch: int) -> tuple[int, int]:
    """Position and offset of the indexed commit closest before `offset`, checked against the segment."""
    index = ref.index if ref.index is not None else _load_index_quietly(ref)
    # Entries past the mapped length were added after this traversal started: not for us.
    entry = index.lookup(offset, segment.length) if index is not None else None
    if entry is None:
        return SEGMENT_HEADER_LEN, ref.base_offset
    key, position = entry
    if isinstance(check_commit(segment.buf, segment.view, position, segment.length, key, epoch), str):
        logger.warning(
            "offset index %s: entry (%d, %d) does not point at a valid commit; scanning the segment instead",
            ref.index_path,
            key,
            position,
        )
        return SEGMENT_HEADER_LEN, ref.base_offset
    return position, key


def _load_index_quietly(ref: SegmentRef) -> OffsetIndex | None:
    try:
        return read_index_file(ref.index_path, ref.base_offset)
    except FileNotFoundError:
        return None
    except Exception as exc:  # any unreadable index just means a slower, linear scan
        logger.warning("offset index %s unusable (%s); scanning the segment instead", ref.index_path, exc)
        return None


def _handle_bad_commit(segment: MappedSegment, ref: SegmentRef, bad: BadCommit, *, is_last: bool) -> None:
    if not (is_last and ref.tolerate_torn_tail):
        raise CommitlogCorruptError(ref.path, bad.expected_offset, bad.reason, byte_position=bad.position)
    torn = classify_bad_commit(segment, bad, segment.length)
    logger.warning(
        "commitlog %s: torn tail of %d bytes at byte %d (transaction offset %d: %s); reading stops there",
        torn.segment_path,
        torn.bytes_truncated,
        torn.byte_position,
        torn.offset,
        torn.reason,
    )
