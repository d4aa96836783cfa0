"""A throw-away worker's side of backups and restores (``seam.BackupDatabase``, ``seam.RestoreDatabase``).

A backup reads the database directory without opening the database: the log up to a durable offset and a
finished snapshot never change again, so the running database (another worker) keeps serving meanwhile and its
writers wait for nothing. A restore opens the database the server unpacked from a verified archive, checks that it
holds exactly the archived state, and hands it to its new identity and owner; no module code runs in either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from spacetimedb.backup import ArchiveError, plan_backup, write_archive
from spacetimedb.commitlog import CommitlogError
from spacetimedb.datastore import ST_MODULE_ID
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.durability import DurabilityError, SnapshotError
from spacetimedb.protocol import seam

from .channel import Channel
from .throwaway import answer_and_exit


def serve_backup(request: seam.BackupDatabase, directory: Path | None, channel: Channel) -> NoReturn:
    if directory is None:
        _fail(channel, "an in-memory database has no files to back up")
    try:
        plan = plan_backup(directory, request.last_offset)
        channel.send(seam.BackupStarted(plan.offset, plan.snapshot_offset))
        window = _CreditWindow(channel)
        size = write_archive(
            plan, request.database.to_hex(), request.program, lambda data: window.send(seam.BackupChunk(data))
        )
    except (ArchiveError, CommitlogError, SnapshotError, OSError) as exc:
        _fail(channel, str(exc))
    answer_and_exit(channel, seam.BackupDone(size))


class _CreditWindow:
    """Sends chunks at most ``seam.BACKUP_WINDOW`` ahead of the server's credits, so a slow download holds the
    worker back instead of filling the server's memory."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._ahead = 0

    def send(self, message: seam.BackupChunk) -> None:
        while self._ahead >= seam.BACKUP_WINDOW:
            messages = self._channel.receive()
            if messages is None:  # the server gave up on the backup
                os._exit(0)
            self._ahead -= sum(isinstance(m, seam.BackupCredit) for m in messages)
        self._channel.send(message)
        self._ahead += 1


def restore_database(request: seam.RestoreDatabase, directory: Path | None, channel: Channel) -> NoReturn:
    if directory is None:
        _fail(channel, "a database can only be restored into a directory")
    options = DbOptions(max_segment_size=request.settings.max_segment_size, snapshot_interval=0)
    try:
        with RelationalDB.open(directory, options) as db:
            _check_restored(db, request)
            with db.mut_tx() as tx:
                rows = list(tx.scan(ST_MODULE_ID))
                if len(rows) != 1:
                    raise ArchiveError("the archived state holds no module")
                row = rows[0]
                if (row[0], row[1]) != (request.database, request.owner):
                    tx.delete(ST_MODULE_ID, row)
                    tx.insert(ST_MODULE_ID, (request.database, request.owner, *row[2:]))
            program_hash = bytes(row[3])
            db.wait_durable(db.next_offset - 1)
    except (ArchiveError, CommitlogError, DurabilityError, OSError) as exc:
        _fail(channel, f"the archive does not restore: {exc}")
    answer_and_exit(channel, seam.Restored(program_hash, request.offset))


def _check_restored(db: RelationalDB, request: seam.RestoreDatabase) -> None:
    stats = db.open_stats
    assert stats is not None
    if stats.snapshot_offset != request.snapshot_offset:
        raise ArchiveError(
            f"its snapshot (at offset {request.snapshot_offset}) did not load"
            + ("" if stats.snapshot_offset is None else f"; the one at {stats.snapshot_offset} did")
        )
    if db.next_offset - 1 != request.offset:
        raise ArchiveError(f"its log ends at offset {db.next_offset - 1}, not at {request.offset}")


def _fail(channel: Channel, reason: str) -> NoReturn:
    answer_and_exit(channel, seam.LaunchFailed(reason))
