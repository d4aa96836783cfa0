"""Durability: the background writer thread with group commit and the durable offset, snapshots, and the
database directory lock.

Makes transactions durable on top of `spacetimedb.commitlog`, the only part of `spacetimedb` it imports.
"""

from __future__ import annotations

from .errors import (
    DatabaseLockedError,
    DurabilityClosedError,
    DurabilityError,
    DurabilityFailedError,
    SnapshotError,
)
from .lock import DirectoryLock
from .snapshot import SkippedSnapshot, Snapshot, SnapshotRepo
from .worker import Durability, DurabilityOptions

__all__ = [
    "DatabaseLockedError",
    "DirectoryLock",
    "Durability",
    "DurabilityClosedError",
    "DurabilityError",
    "DurabilityFailedError",
    "DurabilityOptions",
    "SkippedSnapshot",
    "Snapshot",
    "SnapshotError",
    "SnapshotRepo",
]
