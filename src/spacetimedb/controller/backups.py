"""Hot backups and restores as the supervisor runs them: a throw-away worker reads (or writes) the database's
files, never the server, and never the database's own worker, which keeps serving meanwhile.

A backup streams from its worker as ``BackupChunk`` messages; the server returns a ``BackupCredit`` for each
chunk it passed on, and the worker stays at most ``seam.BACKUP_WINDOW`` chunks ahead, so a slow download costs
the server a few chunks of memory, not the archive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from spacetimedb.backup import Manifest
from spacetimedb.protocol import seam

from .process import WorkerGone, WorkerProcess

# a backup worker that sends nothing for this long is stuck
BACKUP_STALL_SECONDS = 120.0


class BackupFailed(RuntimeError):
    """The backup could not be made (or broke off); ``str()`` says why."""


class RestoreRefused(RuntimeError):
    """The archive could not be restored; ``str()`` says why, and nothing was changed."""


@dataclass(frozen=True)
class RestoreResult:
    program_hash: bytes
    offset: int
    manifest: Manifest


class _WorkerGone:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class BackupStream:
    """The archive a throw-away backup worker sends: ``start`` for its offsets, then ``chunks``; ``close``
    always."""

    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker
        self._messages: asyncio.Queue[Any] = asyncio.Queue()
        self.offset = -1
        self.snapshot_offset: int | None = None
        worker.handler = self._messages.put_nowait
        worker.on_death(lambda reason: self._messages.put_nowait(_WorkerGone(reason)))

    async def start(self, request: seam.BackupDatabase) -> None:
        self._worker.send(request)
        started = await self._next(seam.BackupStarted)
        self.offset, self.snapshot_offset = started.offset, started.snapshot_offset

    async def chunks(self) -> AsyncIterator[bytes]:
        """The archive's bytes; ``BackupFailed`` if it breaks off."""
        while True:
            message = await self._next(seam.BackupChunk, seam.BackupDone)
            if isinstance(message, seam.BackupDone):
                return
            yield message.data
            try:
                self._worker.send(seam.BackupCredit())
            except WorkerGone as exc:
                raise BackupFailed(f"the backup worker stopped: {exc}") from None

    async def _next(self, *expected: type) -> Any:
        try:
            message = await asyncio.wait_for(self._messages.get(), BACKUP_STALL_SECONDS)
        except TimeoutError:
            self._worker.kill(f"it sent nothing for {BACKUP_STALL_SECONDS:g}s during a backup")
            raise BackupFailed(f"the backup stalled for {BACKUP_STALL_SECONDS:g}s") from None
        if isinstance(message, seam.LaunchFailed):
            raise BackupFailed(message.reason)
        if isinstance(message, _WorkerGone):
            raise BackupFailed(f"the backup worker stopped: {message.reason}")
        if not isinstance(message, expected):
            self._worker.kill(f"it sent {type(message).__name__} during a backup")
            raise BackupFailed(self._worker.death_reason())
        return message

    async def close(self) -> None:
        await self._worker.stop(5)
