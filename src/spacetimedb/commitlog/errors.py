"""Exceptions raised by the commitlog.

Every error the commitlog raises on purpose derives from `CommitlogError`, so that callers can tell a
problem with the log apart from a bug elsewhere.
"""

from __future__ import annotations

from pathlib import Path


class CommitlogError(Exception):
    """Base class of every error raised by `spacetimedb.commitlog`."""


class CommitlogCorruptError(CommitlogError):
    """The log contains bytes that are not a valid commit where one is expected.

    `offset` is the transaction offset the reader expected at that point; `byte_position` is where in
    `segment_path` the bad data starts (None when the problem is not tied to one position, e.g. a gap
    between segments).
    """

    def __init__(
        self, segment_path: Path | str, offset: int, reason: str, *, byte_position: int | None = None
    ) -> None:
        self.segment_path = Path(segment_path)
        self.offset = offset
        self.reason = reason
        self.byte_position = byte_position
        where = f" at byte {byte_position}" if byte_position is not None else ""
        super().__init__(
            f"{self.segment_path}: corrupt commitlog{where} (transaction offset {offset}): {reason}"
        )


class CommitlogFormatError(CommitlogError):
    """A file is a valid commitlog file of a version or checksum algorithm this reader does not support."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CommitlogDecodeError(CommitlogError):
    """A transaction record (see `txdata`) is malformed."""


class CommitlogLockedError(CommitlogError):
    """Another writer (this process or another one) has the commitlog directory open for writing."""

    def __init__(self, path: Path | str, holder_pid: int | None) -> None:
        self.path = Path(path)
        self.holder_pid = holder_pid
        holder = (
            f"process {holder_pid}" if holder_pid is not None else "another process (pid not recorded yet)"
        )
        super().__init__(f"{self.path} is locked by {holder}")


class CommitlogFailedError(CommitlogError):
    """An earlier write or fsync failed: the state of the file is unknown, so the log refuses to go on.

    Reopening the directory truncates whatever partial commit the failure left behind.
    """


class CommitlogClosedError(CommitlogError):
    """The log was closed."""
