"""RelationalDB: the datastore made durable.

``open`` takes the directory lock, restores the newest usable snapshot, replays the commitlog after it (schema
transactions included, so tables appear and change exactly as they did), and resumes the sequences at their
persisted bounds. ``commit_tx`` encodes the transaction's record and hands it to the durability worker while
still holding the writer lock, so the log order is the commit order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from spacetimedb.commitlog import (
    Commitlog,
    CommitlogOptions,
    TxInputs,
    TxRecord,
    decode_tx_record,
    encode_commit_record,
)
from spacetimedb.datastore import Datastore, MutTx, ReadTx, TxData
from spacetimedb.durability import DirectoryLock, Durability, DurabilityOptions, SnapshotRepo

log = logging.getLogger(__name__)

DurableListener = Callable[[int], None]


@dataclass(frozen=True)
class DbOptions:
    """How a durable database is kept on disk."""

    max_segment_size: int = 1 << 30
    # take a snapshot after this many committed transactions (0 = never); as in SpacetimeDB, rarely, because
    # encoding every row holds the writer lock for as long as that takes
    snapshot_interval: int = 1_000_000
    # report replay progress every this many transactions
    replay_progress_every: int = 100_000


@dataclass(slots=True, init=False)
class CommitResult:
    """The outcome of ``commit_tx``: the transaction's offset (None when it changed nothing), its data, and with
    ``read_view`` the open ``ReadTx`` on the post-commit state (the caller releases it)."""

    offset: int | None
    tx_data: TxData
    read_view: ReadTx | None

    # (``init=False`` and an ``__init__`` of its own: mypyc compiles it, the dataclass-generated one runs as
    # interpreted code, on every call)
    def __init__(self, offset: int | None, tx_data: TxData, read_view: ReadTx | None = None) -> None:
        self.offset = offset
        self.tx_data = tx_data
        self.read_view = read_view


@dataclass(frozen=True, slots=True)
class OpenStats:
    snapshot_offset: int | None
    replayed: int
    seconds: float


class RelationalDB:
    """A database: a ``Datastore`` plus, when durable, its commitlog, durability worker and snapshots."""

    def __init__(
        self,
        datastore: Datastore,
        *,
        path: Path | None = None,
        durability: Durability | None = None,
        lock: DirectoryLock | None = None,
        snapshots: SnapshotRepo | None = None,
        options: DbOptions | None = None,
        next_offset: int = 0,
        open_stats: OpenStats | None = None,
    ) -> None:
        self.datastore = datastore
        self.path = path
        self.options = options or DbOptions()
        self.open_stats = open_stats
        self._durability = durability
        self._lock = lock
        self._snapshots = snapshots
        self._next_offset = next_offset
        self._commits_since_snapshot = 0
        self._listeners: list[DurableListener] = []
        self._snapshot_writer = _SnapshotWriter(snapshots, str(path)) if snapshots is not None else None
        self._closed = False

    # -- constructors ------------------------------------------------------------------------------------------

    @classmethod
    def in_memory(cls) -> RelationalDB:
        """A database with no disk at all: commits are "durable" the moment they are made."""
        return cls(Datastore())

    @classmethod
    def open(
        cls,
        path: Path | str,
        options: DbOptions | None = None,
        *,
        fsync: Callable[[int], None] | None = None,
    ) -> RelationalDB:
        """Open (or create) the durable database in ``path``; see the module docstring."""
        options = options or DbOptions()
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        lock = DirectoryLock(root).acquire()
        try:
            return cls._open_locked(root, options, lock, fsync)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(
        cls, root: Path, options: DbOptions, lock: DirectoryLock, fsync: Callable[[int], None] | None
    ) -> RelationalDB:
        started = time.monotonic()
        clog_options = CommitlogOptions(max_segment_size=options.max_segment_size)
        if fsync is None:
            clog = Commitlog.open(root / "clog", clog_options)
        else:
            clog = Commitlog.open(root / "clog", clog_options, fsync=fsync)
        try:
            snapshots = SnapshotRepo(root / "snapshots")
            _report_interrupted_writes(clog, snapshots)
            datastore = Datastore()
            log_end = clog.next_offset
            snapshot = snapshots.latest(max_offset=log_end - 1) if log_end else None
            start = 0
            if snapshot is not None:
                datastore.import_rows(snapshot.tables)
                start = snapshot.offset + 1
                log.info("restored snapshot at offset %d from %s", snapshot.offset, root)
            replayed = cls._replay(datastore, clog, start, options)
            datastore.reset_sequences_from_rows()
            durability = Durability(clog, DurabilityOptions(commitlog=clog_options))
        except BaseException:
            clog.close()
            raise
        stats = OpenStats(None if snapshot is None else snapshot.offset, replayed, time.monotonic() - started)
        if replayed:
            log.info("replayed %d transaction(s) of %s in %.2fs", replayed, root, stats.seconds)
        db = cls(
            datastore,
            path=root,
            durability=durability,
            lock=lock,
            snapshots=snapshots,
            options=options,
            next_offset=log_end,
            open_stats=stats,
        )
        durability.add_durable_listener(db._notify_durable)
        return db

    @staticmethod
    def _replay(datastore: Datastore, clog: Commitlog, start: int, options: DbOptions) -> int:
        return replay_transactions(datastore, clog.transactions_from(start), start, options=options)

    # -- transactions ---------------------------------------------------------------------------------------

    def begin_mut_tx(self, timeout: float | None = None) -> MutTx:
        # ``_check_open`` and ``Datastore.begin_mut_tx``, inline: every reducer call begins here
        if self._closed:
            self._check_open()
        datastore = self.datastore
        if not datastore.lock.acquire_write(timeout):
            raise TimeoutError("timed out waiting for the write lock")
        return MutTx(datastore)

    def begin_tx(self, timeout: float | None = None) -> ReadTx:
        self._check_open()
        return self.datastore.begin_tx(timeout)

    def rollback(self, tx: MutTx) -> None:
        tx.rollback()

    def commit_tx(
        self, tx: MutTx, inputs: TxInputs | None = None, *, read_view: bool = False
    ) -> CommitResult:
        """Commit ``tx`` and queue its record for durability; returns at once with the offset.

        With ``read_view`` the result carries a read transaction on exactly the post-commit state (release it).
        A transaction that changed nothing gets no offset and is not logged."""
        data = tx.prepare_commit()
        offset: int | None = None
        if data.tables:
            # the offset the durability queue gives the record (in memory: the next one)
            durability = self._durability
            if durability is None:
                offset = self._next_offset
            else:
                try:
                    offset = durability.append_tx(encode_commit_record(inputs, data.tables))
                except BaseException:  # too large, or the log failed: the transaction did not happen
                    tx.abandon_prepared()
                    raise
            self._next_offset = offset + 1
            self._commits_since_snapshot += 1
        view = tx.finish_commit(read_view)
        if offset is not None and self._durability is None:
            self._notify_durable(offset)
        if self._commits_since_snapshot >= self.options.snapshot_interval > 0 and self._snapshots is not None:
            self.take_snapshot()
        return CommitResult(offset, data, view)

    @contextmanager
    def mut_tx(self, inputs: TxInputs | None = None) -> Iterator[MutTx]:
        """``with db.mut_tx() as tx:`` commits on a normal exit and rolls back on an exception."""
        tx = self.begin_mut_tx()
        try:
            yield tx
        except BaseException:
            self.rollback(tx)
            raise
        self.commit_tx(tx, inputs)

    @contextmanager
    def read_tx(self) -> Iterator[ReadTx]:
        tx = self.begin_tx()
        try:
            yield tx
        finally:
            tx.release()

    # -- durability ------------------------------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        return self._next_offset

    def durable_offset(self) -> int | None:
        if self._durability is None:
            return self._next_offset - 1 if self._next_offset else None
        return self._durability.durable_offset()

    def wait_durable(self, offset: int, timeout: float | None = None) -> bool:
        if self._durability is None:
            return offset < self._next_offset
        return self._durability.wait_durable(offset, timeout)

    def add_durable_listener(self, callback: DurableListener) -> None:
        """``callback(offset)`` runs after each fsync (on the durability thread), or at commit in memory."""
        self._listeners.append(callback)

    def _notify_durable(self, offset: int) -> None:
        for callback in list(self._listeners):
            try:
                callback(offset)
            except Exception:
                log.exception("durable-offset listener failed")

    def set_failure_handler(self, callback: Callable[[BaseException], None]) -> None:
        if self._durability is not None:
            self._durability.set_failure_handler(callback)

    @property
    def failed(self) -> BaseException | None:
        return None if self._durability is None else self._durability.failed

    @property
    def is_durable(self) -> bool:
        return self._durability is not None

    def commitlog_bytes(self) -> int:
        """The size of the commitlog's segments on disk (0 in memory)."""
        if self._durability is None:
            return 0
        return sum(segment.size for segment in self._durability.commitlog.segments())

    # -- snapshots ---------------------------------------------------------------------------------------------

    def take_snapshot(self, wait: bool = False) -> int | None:
        """Snapshot the committed state at the last offset; the file is written on the snapshot thread."""
        writer = self._snapshot_writer
        if writer is None or not self._next_offset:
            return None
        if writer.busy():
            if not wait:
                return None
            writer.wait()
        with self.read_tx():
            offset = self._next_offset - 1
            rows = self.datastore.export_rows()
        self._commits_since_snapshot = 0
        writer.write(offset, rows)
        if wait:
            writer.wait()
        return offset

    def newest_snapshot(self) -> tuple[int, float] | None:
        """(offset, modification time) of the newest snapshot file, or None (none yet, or in memory)."""
        if self._snapshots is None:
            return None
        for offset in reversed(self._snapshots.offsets()):
            try:
                return offset, self._snapshots.path_for(offset).stat().st_mtime
            except OSError:  # removed meanwhile
                continue
        return None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the database is closed")

    def close(self) -> None:
        """Flush and fsync everything, stop the worker, release the directory lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._snapshot_writer is not None:
                self._snapshot_writer.close()
            if self._durability is not None:
                self._durability.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> RelationalDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory"
        return f"RelationalDB({where}, next_offset={self._next_offset})"


TxVisitor = Callable[[int, TxRecord, Datastore], None]


def replay_transactions(
    datastore: Datastore,
    transactions: Iterable[tuple[int, bytes]],
    start: int,
    last: int | None = None,
    *,
    options: DbOptions | None = None,
    before_each: TxVisitor | None = None,
) -> int:
    """Apply the logged ``transactions`` from offset ``start`` (through ``last``, when given) to ``datastore``;
    ``before_each(offset, record, datastore)`` sees each one first. Returns how many were applied."""
    every = (options or DbOptions()).replay_progress_every
    count = 0
    expected = start
    for offset, payload in transactions:
        if offset < start:
            continue
        if last is not None and offset > last:
            break
        if offset != expected:
            raise RuntimeError(f"commitlog offsets jump from {expected} to {offset}")
        record = decode_tx_record(payload)
        if before_each is not None:
            before_each(offset, record, datastore)
        datastore.replay_transaction(record.inserts, record.deletes)
        for table_id in record.truncates:
            datastore.tables[table_id].clear()
        expected += 1
        count += 1
        if count % every == 0:
            log.info("replay: %d transactions (offset %d)", count, offset)
    return count


def _report_interrupted_writes(clog: Commitlog, snapshots: SnapshotRepo) -> None:
    """Remove (the commitlog already has) the temp files of writes a crash cut short, each with a log line: they
    are never read again, and a snapshot's is as large as the database."""
    for path in (*clog.open_report.stale_files_removed, *snapshots.remove_temp_files()):
        log.warning("removed %s, the temp file of a write cut short by a crash", path)


class _SnapshotWriter:
    """Writes snapshot files on one long-lived thread, started with the database: a sandboxed worker may not
    start threads once its module is loaded."""

    def __init__(self, repo: SnapshotRepo, name: str) -> None:
        self._repo = repo
        self._cond = threading.Condition()
        self._pending: tuple[int, dict[int, list[bytes]]] | None = None
        self._writing = False
        self._closed = False
        self._worker_thread = threading.Thread(target=self._run, name=f"snapshot:{name}", daemon=True)
        self._worker_thread.start()

    def busy(self) -> bool:
        with self._cond:
            return self._pending is not None or self._writing

    def write(self, offset: int, rows: dict[int, list[bytes]]) -> None:
        with self._cond:
            self._pending = (offset, rows)
            self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            while self._pending is not None or self._writing:
                self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                (offset, rows), self._pending = self._pending, None
                self._writing = True
            try:
                self._repo.write(offset, rows)
            except Exception:
                log.exception("writing the snapshot at offset %d failed", offset)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def close(self) -> None:
        """Finish a snapshot in progress or queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker_thread is not threading.current_thread():
            self._worker_thread.join()
