"""The sparse offset index of one segment: `<base>.stdb.ofs`.

The index only speeds things up (seeking to an offset, finding the end of a large segment on open); the
segment alone is the truth. So the index file is never fsynced, its entries are checked against the
segment before use, and a missing or inconsistent index is simply rebuilt from the segment.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from .format import INDEX_ENTRY, INDEX_HEADER_LEN, FormatProblem, decode_index_header, encode_index_header


class OffsetIndex:
    """Entries `(tx offset of a commit, byte position of that commit)`, both strictly increasing."""

    __slots__ = ("keys", "positions")

    def __init__(self, entries: Iterable[tuple[int, int]] = ()) -> None:
        self.keys: list[int] = []
        self.positions: list[int] = []
        for key, position in entries:
            self.append(key, position)

    def __len__(self) -> int:
        return len(self.keys)

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self.keys, self.positions, strict=True))

    def append(self, key: int, position: int) -> None:
        if self.keys and (key <= self.keys[-1] or position <= self.positions[-1]):
            raise ValueError(
                f"index entry ({key}, {position}) does not follow ({self.keys[-1]}, {self.positions[-1]})"
            )
        # Position first: a reader in another thread bisects `keys` and then indexes `positions`.
        self.positions.append(position)
        self.keys.append(key)

    def lookup(self, offset: int, end_position: int | None = None) -> tuple[int, int] | None:
        """The entry with the greatest key <= `offset` (and position < `end_position`, if given)."""
        i = bisect.bisect_right(self.keys, offset)
        if end_position is not None:
            i = min(i, bisect.bisect_left(self.positions, end_position))
        i -= 1
        return (self.keys[i], self.positions[i]) if i >= 0 else None

    def last(self) -> tuple[int, int] | None:
        return (self.keys[-1], self.positions[-1]) if self.keys else None

    def truncate_before_position(self, end_position: int) -> int:
        """Drop entries at or past `end_position`; return how many remain."""
        keep = bisect.bisect_left(self.positions, end_position)
        del self.keys[keep:]
        del self.positions[keep:]
        return keep

    def drop_from(self, i: int) -> None:
        del self.keys[i:]
        del self.positions[i:]


def encode_entries(entries: Iterable[tuple[int, int]]) -> bytes:
    return b"".join(INDEX_ENTRY.pack(key, position) for key, position in entries)


def read_index_file(path: Path, base_offset: int) -> OffsetIndex:
    """Load and sanity-check an index file; FormatProblem if it is unusable, OSError if unreadable."""
    data = path.read_bytes()
    if decode_index_header(data) != base_offset:
        raise FormatProblem("index belongs to another segment")
    body = len(data) - INDEX_HEADER_LEN
    if body % INDEX_ENTRY.size:
        raise FormatProblem(f"index has a partial entry ({body % INDEX_ENTRY.size} trailing bytes)")
    index = OffsetIndex()
    for key, position in INDEX_ENTRY.iter_unpack(memoryview(data)[INDEX_HEADER_LEN:]):
        if key <= base_offset or (index.keys and (key <= index.keys[-1] or position <= index.positions[-1])):
            raise FormatProblem(f"index entries out of order at ({key}, {position})")
        index.keys.append(key)
        index.positions.append(position)
    return index


def write_index_file(path: Path, base_offset: int, index: OffsetIndex) -> None:
    """Replace the index file atomically (temp + rename; no fsync, a torn index is rebuilt anyway)."""
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        temp.write_bytes(encode_index_header(base_offset) + encode_entries(index.entries()))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


class IndexAppender:
    """Appends entries to the index file of the segment being written.

    Entries are buffered and written a few dozen at a time: the index on disk may lag the segment (open
    then scans a little more), which costs less than a system call per commit batch. A write failure never
    fails a commit: the appender logs nothing itself, returns the error once and disables itself; the
    missing entries are recreated when the index is next rebuilt.
    """

    FLUSH_EVERY = 32

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._pending: list[tuple[int, int]] = []

    @property
    def broken(self) -> bool:
        return self._fd is None

    def append(self, entries: list[tuple[int, int]]) -> OSError | None:
        if self._fd is None:
            return None
        self._pending.extend(entries)
        if len(self._pending) >= self.FLUSH_EVERY:
            return self.flush()
        return None

    def flush(self) -> OSError | None:
        if self._fd is None or not self._pending:
            return None
        data, self._pending = encode_entries(self._pending), []
        try:
            os.write(self._fd, data)
        except OSError as exc:
            self._close_fd()
            return exc
        return None

    def close(self) -> OSError | None:
        error = self.flush()
        self._close_fd()
        return error

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
