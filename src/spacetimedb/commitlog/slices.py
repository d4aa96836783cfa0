"""Which bytes of which segment files hold a range of transactions: what a backup copies.

A hot backup copies the log of a database that keeps writing. It asks for the commits up to a durable offset:
those bytes never change again (a writer only appends past them), so copying exactly them gives a consistent
log, which ``Commitlog.open`` reads like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import CommitlogError
from .format import CHECKSUM, COMMIT_HEADER_LEN, join_records, parse_segment_file_name
from .log import commits_from


@dataclass(frozen=True)
class SegmentSlice:
    """The first ``length`` bytes of the segment file ``path``, whose first transaction is ``base_offset``."""

    base_offset: int
    path: Path
    length: int


def log_slices(directory: Path | str, first_offset: int, last_offset: int) -> list[SegmentSlice]:
    """The segments (each cut after its last commit at or before ``last_offset``) that hold every transaction
    from ``first_offset`` to ``last_offset``. Every commit in the range is read and its checksum verified on the
    way; ``CommitlogError`` if the range is not all there or a commit straddles ``last_offset``."""
    if not 0 <= first_offset <= last_offset:
        raise ValueError(f"bad offset range {first_offset}..{last_offset}")
    ends: dict[Path, int] = {}  # in log order
    reached = -1
    for commit in commits_from(directory, first_offset):
        if commit.min_tx_offset > last_offset:
            break
        payload = len(join_records(commit.records))
        ends[commit.segment_path] = commit.byte_position + COMMIT_HEADER_LEN + payload + CHECKSUM.size
        reached = commit.next_offset - 1
    if reached < last_offset:
        raise CommitlogError(f"the log of {directory} ends at offset {reached}, before {last_offset}")
    if reached > last_offset:
        raise CommitlogError(
            f"a commit holds offsets past {last_offset} (up to {reached}): no clean cut there"
        )
    return [SegmentSlice(_base_of(path), path, end) for path, end in ends.items()]


def _base_of(path: Path) -> int:
    base = parse_segment_file_name(path.name)
    assert base is not None  # the traversal only reads segment files
    return base
