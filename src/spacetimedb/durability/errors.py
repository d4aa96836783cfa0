"""Exceptions raised by the durability layer."""

from __future__ import annotations

from pathlib import Path


class DurabilityError(Exception):
    """Base class of every error raised on purpose by `spacetimedb.durability`."""


class DurabilityFailedError(DurabilityError):
    """The durability cannot make (more) transactions durable: a write or fsync failed, or it was closed."""


class DurabilityClosedError(DurabilityFailedError):
    """`close()` was called; nothing more can be appended."""


class DatabaseLockedError(DurabilityError):
    """Another process (or another lock object in this one) holds the database directory."""

    def __init__(self, path: Path, holder_pid: int | None) -> None:
        self.path = path
        self.holder_pid = holder_pid
        holder = (
            f"pid {holder_pid}" if holder_pid is not None else "another process (its pid is not recorded yet)"
        )
        super().__init__(f"database directory is locked: {path} is held by {holder}")


class SnapshotError(DurabilityError):
    """A snapshot file could not be read: bad checksum, truncated, or not a snapshot."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
