"""`Commitlog`: the writable log of one database, plus read-only access to a log directory.

Writing appends framed commits to the newest segment with plain `os.write` calls (no user-space buffer,
so anything returned by `append_commits` is visible to readers at once) and leaves fsync to the caller
(`sync`), which is how the durability worker batches many commits per fsync. The one exception is
segment rotation: a full segment is fsynced before the next one is started, so that a crash can never
leave a gap in the middle of the log.

The durability worker writes its batches with `append_transactions`, which groups consecutive transactions
into commits of up to `GROUP_RECORDS` records (as upstream's durability does): one header and one checksum
per group, not per transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from crc32c import crc32c

from spacetimedb.fsutil import fsync_directory

from .errors import (
    CommitlogClosedError,
    CommitlogCorruptError,
    CommitlogError,
    CommitlogFailedError,
    CommitlogLockedError,
)
from .format import (
    CHECKSUM,
    COMMIT_FRAMING_LEN,
    COMMIT_HEADER,
    COMMIT_MAGIC,
    MAX_COMMIT_PAYLOAD,
    MAX_RECORDS_PER_COMMIT,
    SEGMENT_HEADER_LEN,
    encode_segment_header,
    index_file_name,
    join_records,
    list_segment_files,
    segment_file_name,
)
from .index import IndexAppender, OffsetIndex, write_index_file
from .pidlock import LockHeldError, acquire_pid_lock, release_pid_lock
from .reader import Commit, SegmentRef, fold_transactions_from, iter_commits_from, iter_transactions_from
from .segment import SegmentScan, TornTail, scan_segment
from .txdata import BYTES_LIKE, TxRecord

logger = logging.getLogger(__name__)

WRITER_LOCK_NAME = "writer.lock"
# Payloads smaller than this are copied next to their header to checksum both in one call.
_CONCAT_BELOW: Final = 4096
# ``append_transactions``' commits: at most this many transactions, and no more payload than this unless one
# transaction alone is bigger (a torn tail loses at most one commit, none of whose transactions was durable)
GROUP_RECORDS: Final = 256
GROUP_BYTES: Final = 1 << 20
_TEMP_MARKER = ".tmp-"

FsyncFn = Callable[[int], None]
WriteFn = Callable[[int, bytes | memoryview], int]


@dataclass(frozen=True)
class CommitlogOptions:
    """Settings of a commitlog; the defaults suit production, tests shrink the sizes."""

    # A segment is sealed and a new one started once a commit brings it to at least this many bytes.
    max_segment_size: int = 1 << 30
    # An offset-index entry is written for the first commit starting this many bytes after the last one.
    offset_index_interval_bytes: int = 4096
    # Epoch written into new commits unless the log already has a higher one (replicated setups).
    epoch: int = 0
    # Open normally checks each segment's header and tail; True checks every commit of every segment.
    verify_all_on_open: bool = False

    def __post_init__(self) -> None:
        if self.max_segment_size < SEGMENT_HEADER_LEN + COMMIT_FRAMING_LEN:
            raise ValueError(
                f"max_segment_size must be at least {SEGMENT_HEADER_LEN + COMMIT_FRAMING_LEN} bytes"
            )
        if self.offset_index_interval_bytes < 1:
            raise ValueError("offset_index_interval_bytes must be positive")
        if self.epoch < 0:
            raise ValueError("epoch must be >= 0")


@dataclass(frozen=True)
class SegmentSummary:
    base_offset: int
    path: Path
    size: int
    next_offset: int  # offset after this segment's last transaction


@dataclass(frozen=True)
class OpenReport:
    """What `Commitlog.open` found and repaired."""

    next_offset: int
    segments: tuple[SegmentSummary, ...]
    torn_tail: TornTail | None = None
    indexes_rebuilt: tuple[Path, ...] = ()
    created: bool = False  # the directory held no log yet
    stale_files_removed: tuple[Path, ...] = field(default=())


@dataclass
class _Head:
    """The segment being written."""

    base_offset: int
    path: Path
    fd: int
    size: int
    index: OffsetIndex
    index_appender: IndexAppender
    last_indexed_position: int
    # what is known to be on disk: the size after the last fsync (or at open, or once created)
    synced_size: int


class Commitlog:
    """A segmented, checksummed, append-only log of transactions with dense offsets 0, 1, 2, ...

    One writer per directory, enforced with `writer.lock`. Calls are serialised by an internal lock, so
    each append gets a contiguous range of offsets; readers in other threads see a consistent prefix of
    the log as of the moment they start.
    """

    def __init__(
        self,
        directory: Path | str,
        options: CommitlogOptions | None = None,
        *,
        fsync: FsyncFn = os.fdatasync,
        write: WriteFn = os.write,
    ) -> None:
        """Same as `Commitlog.open`."""
        self.directory = Path(directory)
        self.options = options or CommitlogOptions()
        self._fsync = fsync
        self._write = write
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._closed = False
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._lock_fd = acquire_pid_lock(self.directory / WRITER_LOCK_NAME)
        except LockHeldError as held:
            raise CommitlogLockedError(held.path, held.holder_pid) from None
        try:
            self._recover()
        except BaseException:
            release_pid_lock(self._lock_fd)
            raise

    @classmethod
    def open(
        cls,
        directory: Path | str,
        options: CommitlogOptions | None = None,
        *,
        fsync: FsyncFn = os.fdatasync,
        write: WriteFn = os.write,
    ) -> Commitlog:
        """Open (creating if needed) the log in `directory` for writing.

        A torn tail of the newest segment is cut off and reported in `open_report`; missing or corrupt
        offset indexes are rebuilt; corruption anywhere else raises `CommitlogCorruptError`.
        `fsync` and `write` replace `os.fdatasync` / `os.write` for segment data (fault injection).
        """
        return cls(directory, options, fsync=fsync, write=write)

    # -----------------------------------------------------------------------------------------------
    # Opening

    def _recover(self) -> None:
        stale = self._remove_stale_temp_files()
        created = not list_segment_files(self.directory)
        if created:
            self._create_segment_file(0, self.options.epoch)
        scans = _scan_directory(self.directory, self.options)
        rebuilt = []
        self._sealed: list[SegmentSummary] = []
        for scan in scans[:-1]:
            if scan.index_changed and scan.index is not None:
                rebuilt.append(_write_scanned_index(scan))
            self._sealed.append(SegmentSummary(scan.base_offset, scan.path, scan.file_size, scan.next_offset))
        head = scans[-1]
        torn = self._repair_tail(head)
        if head.index_problem is not None:
            rebuilt.append(head.path.with_name(index_file_name(head.base_offset)))
        self._resume(head)
        self.open_report = OpenReport(
            next_offset=self._next_offset,
            segments=(*self._sealed, self._head_summary()),
            torn_tail=torn,
            indexes_rebuilt=tuple(rebuilt),
            created=created,
            stale_files_removed=tuple(stale),
        )

    def _remove_stale_temp_files(self) -> list[Path]:
        """Temp files left by a crash while creating a segment or index (we hold the writer lock)."""
        removed = []
        for entry in self.directory.iterdir():
            name = entry.name
            if _TEMP_MARKER in name and (".stdb.log" in name or ".stdb.ofs" in name):
                entry.unlink(missing_ok=True)
                removed.append(entry)
        return removed

    def _repair_tail(self, scan: SegmentScan) -> TornTail | None:
        torn = scan.torn_tail
        if torn is None:
            return None
        logger.warning(
            "commitlog %s: truncating torn tail of %d bytes at byte %d (transaction offset %d: %s)",
            torn.segment_path,
            torn.bytes_truncated,
            torn.byte_position,
            torn.offset,
            torn.reason,
        )
        fd = os.open(scan.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, torn.byte_position)
            self._fsync(fd)
        finally:
            os.close(fd)
        return torn

    def _resume(self, scan: SegmentScan) -> None:
        """Make the newest segment the head: continue writing right after its last valid commit."""
        base = scan.base_offset
        index = scan.index if scan.index is not None else OffsetIndex()
        index_path = scan.path.with_name(index_file_name(base))
        if scan.index_changed or not index_path.exists():
            write_index_file(index_path, base, index)
        fd = os.open(scan.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        last = index.last()
        self._head = _Head(
            base_offset=base,
            path=scan.path,
            fd=fd,
            size=scan.end_position,
            index=index,
            index_appender=IndexAppender(index_path),
            last_indexed_position=last[1] if last else SEGMENT_HEADER_LEN,
            synced_size=scan.end_position,
        )
        self._next_offset = scan.next_offset
        self._epoch = max(scan.last_epoch, self.options.epoch)

    def _create_segment_file(self, base_offset: int, epoch: int) -> Path:
        """Write the header to a temp file, fsync it, rename it into place, fsync the directory."""
        path = self.directory / segment_file_name(base_offset)
        if path.exists() and path.stat().st_size > 0:
            raise CommitlogError(f"refusing to overwrite existing segment {path}")
        temp = path.with_name(f"{path.name}{_TEMP_MARKER}{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            self._write_fully(fd, encode_segment_header(base_offset, epoch))
            self._fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        index_path = self.directory / index_file_name(base_offset)
        write_index_file(index_path, base_offset, OffsetIndex())
        fsync_directory(self.directory)
        return path

    # -----------------------------------------------------------------------------------------------
    # Writing

    @property
    def next_offset(self) -> int:
        """Offset the next appended transaction will get (appended, not necessarily fsynced)."""
        return self._next_offset

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def failed(self) -> BaseException | None:
        """The write/fsync error that made this log unusable, if any."""
        return self._failure

    def set_epoch(self, epoch: int) -> None:
        """Later commits carry `epoch`, which may never go down."""
        with self._lock:
            if epoch < self._epoch:
                raise ValueError(f"epoch {epoch} is lower than the current epoch {self._epoch}")
            self._epoch = epoch

    def append_commits(self, payloads: Sequence[bytes]) -> int:
        """Write each payload as its own commit (one transaction each); return the first one's offset.

        All commits go to the kernel in one write call (two if a segment fills up). This does not fsync;
        call `sync` to make them durable. A failed write makes the log unusable (`CommitlogFailedError`).
        """
        if not payloads:
            raise ValueError("append_commits needs at least one payload")
        _check_payloads(payloads)
        with self._lock:
            self._check_writable()
            first = self._next_offset
            self._append_framed(payloads)
            return first

    def append_transactions(self, payloads: Sequence[bytes]) -> int:
        """Write transactions (one payload each) as few commits: consecutive ones grouped, up to
        ``GROUP_RECORDS`` and ``GROUP_BYTES`` per commit; return the first one's offset. Like ``append_commits``
        otherwise: one write call (more if segments fill up), no fsync. A group survives a crash or vanishes
        whole, which is all a caller that reports durability only after ``sync`` can see."""
        if not payloads:
            raise ValueError("append_transactions needs at least one payload")
        _check_payloads(payloads)
        commits, counts = _grouped(payloads)
        with self._lock:
            self._check_writable()
            first = self._next_offset
            self._append_framed(commits, counts)
            return first

    def append_commit(self, records: Sequence[bytes]) -> int:
        """Write several transactions as a single commit: after a crash they survive or vanish together."""
        if not records:
            raise ValueError("append_commit needs at least one record")
        if len(records) > MAX_RECORDS_PER_COMMIT:
            raise ValueError(f"a commit holds at most {MAX_RECORDS_PER_COMMIT} transactions")
        _check_payloads(records)
        payload = join_records(records)
        if len(payload) > MAX_COMMIT_PAYLOAD:
            raise ValueError(f"commit payload of {len(payload)} bytes exceeds {MAX_COMMIT_PAYLOAD}")
        with self._lock:
            self._check_writable()
            first = self._next_offset
            self._append_framed([payload], [len(records)])
            return first

    def _append_framed(self, payloads: Sequence[bytes], counts: Sequence[int] | None = None) -> None:
        """Frame and write each payload as a commit of ``counts[i]`` transactions (None: one each)."""
        head = self._head
        max_size = self.options.max_segment_size
        interval = self.options.offset_index_interval_bytes
        pack_header = COMMIT_HEADER.pack
        pack_checksum = CHECKSUM.pack
        offset, epoch = self._next_offset, self._epoch
        position, last_indexed = head.size, head.last_indexed_position
        parts: list[bytes] = []
        new_entries: list[tuple[int, int]] = []
        for number, payload in enumerate(payloads):
            size = len(payload)
            records_per_commit = 1 if counts is None else counts[number]
            header = pack_header(COMMIT_MAGIC, offset, epoch, records_per_commit, size)
            if size < _CONCAT_BELOW:
                # One checksum call over a small concatenation beats two calls (measured ~2x).
                framed = header + payload
                parts.append(framed)
                parts.append(pack_checksum(crc32c(framed)))
            else:
                parts.append(header)
                parts.append(payload)
                parts.append(pack_checksum(crc32c(payload, crc32c(header))))
            if position - last_indexed >= interval:
                new_entries.append((offset, position))
                last_indexed = position
            position += COMMIT_FRAMING_LEN + size
            offset += records_per_commit
            if position >= max_size:
                self._write_to_head(parts, position, offset, new_entries, last_indexed)
                self._rotate()
                head = self._head
                position, last_indexed = head.size, head.last_indexed_position
                parts, new_entries = [], []
        if parts:
            self._write_to_head(parts, position, offset, new_entries, last_indexed)

    def _write_to_head(
        self,
        parts: list[bytes],
        new_size: int,
        next_offset: int,
        new_entries: list[tuple[int, int]],
        last_indexed: int,
    ) -> None:
        head = self._head
        try:
            self._write_fully(head.fd, b"".join(parts))
        except BaseException as exc:
            self._fail(exc)
            self._drop_unsynced()
            raise _failed(f"write to {head.path} failed: {exc!r}", exc) from exc
        head.size = new_size
        self._next_offset = next_offset
        head.last_indexed_position = last_indexed
        if new_entries:
            for key, position in new_entries:
                head.index.append(key, position)
            error = head.index_appender.append(new_entries)
            if error is not None:
                logger.warning(
                    "offset index %s: write failed (%s); it will be rebuilt", head.index_appender.path, error
                )

    def _write_fully(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._write(fd, view)
            if written <= 0:
                raise OSError(f"write returned {written} with {len(view)} bytes left")
            view = view[written:]

    def _rotate(self) -> None:
        """Seal the full head segment (fsync first, so no later segment can outlive it) and start the next."""
        head = self._head
        try:
            self._fsync(head.fd)
            new_path = self._create_segment_file(self._next_offset, self._epoch)
            new_fd = os.open(new_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except BaseException as exc:
            self._fail(exc)
            raise _failed(f"sealing segment {head.path} failed: {exc!r}", exc) from exc
        os.close(head.fd)
        _close_index(head)
        self._sealed.append(SegmentSummary(head.base_offset, head.path, head.size, self._next_offset))
        self._head = _Head(
            base_offset=self._next_offset,
            path=new_path,
            fd=new_fd,
            size=SEGMENT_HEADER_LEN,
            index=OffsetIndex(),
            index_appender=IndexAppender(new_path.with_name(index_file_name(self._next_offset))),
            last_indexed_position=SEGMENT_HEADER_LEN,
            synced_size=SEGMENT_HEADER_LEN,
        )

    def sync(self) -> None:
        """fsync the segment being written (earlier segments were fsynced when they were sealed)."""
        with self._lock:
            self._check_writable()
            head = self._head
            try:
                self._fsync(head.fd)
            except BaseException as exc:
                self._fail(exc)
                self._drop_unsynced()
                raise _failed(f"fsync of {head.path} failed: {exc!r}", exc) from exc
            head.synced_size = head.size

    def _drop_unsynced(self) -> None:
        """After a failed write or fsync (a full disk): cut the head back to what was last made durable, so
        that commits whose durability failed (never acknowledged) cannot come back when the log is reopened.
        Best effort; a batch that spanned a segment rotation keeps its part in the sealed segment."""
        head = self._head
        try:
            os.ftruncate(head.fd, head.synced_size)
            self._fsync(head.fd)
        except OSError as exc:
            logger.error(
                "commitlog %s: could not cut %s back to %d bytes: %r",
                self.directory,
                head.path,
                head.synced_size,
                exc,
            )

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
            logger.error("commitlog %s failed; refusing further writes: %r", self.directory, exc)

    def _check_writable(self) -> None:
        if self._closed:
            raise CommitlogClosedError(f"commitlog {self.directory} is closed")
        if self._failure is not None:
            raise CommitlogFailedError(
                f"commitlog {self.directory} failed earlier ({self._failure!r}); reopen it to recover"
            )

    def close(self) -> None:
        """fsync (unless the log failed), release files and the writer lock. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            head = self._head
            try:
                if self._failure is None:
                    try:
                        self._fsync(head.fd)
                    except BaseException as exc:
                        self._fail(exc)
                        raise _failed(f"final fsync of {head.path} failed: {exc!r}", exc) from exc
            finally:
                with contextlib.suppress(OSError):
                    os.close(head.fd)
                _close_index(head)
                release_pid_lock(self._lock_fd)

    def __enter__(self) -> Commitlog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------------
    # Reading

    def segments(self) -> list[SegmentSummary]:
        with self._lock:
            return [*self._sealed, self._head_summary()]

    def _head_summary(self) -> SegmentSummary:
        head = self._head
        return SegmentSummary(head.base_offset, head.path, head.size, self._next_offset)

    def _segment_refs(self) -> list[SegmentRef]:
        with self._lock:
            if self._closed:
                raise CommitlogClosedError(f"commitlog {self.directory} is closed")
            refs = [SegmentRef(s.base_offset, s.path, s.size) for s in self._sealed]
            head = self._head
            refs.append(SegmentRef(head.base_offset, head.path, head.size, index=head.index))
            return refs

    def commits_from(self, offset: int = 0) -> Iterator[Commit]:
        """Verified commits, starting with the one that contains `offset`."""
        return iter_commits_from(self._segment_refs(), offset)

    def transactions_from(self, offset: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, payload) of every transaction from `offset` to the end as of this call."""
        return iter_transactions_from(self._segment_refs(), offset)

    def fold_transactions(self, offset: int, visitor: Callable[[int, TxRecord], object]) -> int:
        """Call `visitor(offset, decoded TxRecord)` for each transaction from `offset`; return the next offset."""
        return fold_transactions_from(self._segment_refs(), offset, visitor)


def _failed(message: str, cause: BaseException) -> CommitlogFailedError:
    """The log's failure, its cause the I/O error (which the durability reports): set here, as compiled, a
    ``raise ... from`` in a handler that made other calls first left the cause out."""
    error = CommitlogFailedError(message)
    error.__cause__ = cause
    return error


def _close_index(head: _Head) -> None:
    error = head.index_appender.close()
    if error is not None:
        logger.warning(
            "offset index %s: write failed (%s); it will be rebuilt", head.index_appender.path, error
        )


def _grouped(payloads: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
    """``payloads`` as the payloads of commits of consecutive transactions (``join_records``' layout) and the
    number of transactions in each."""
    commits: list[bytes] = []
    counts: list[int] = []
    first = group_bytes = 0
    for number, payload in enumerate(payloads):
        size = len(payload)
        if number > first and (number - first >= GROUP_RECORDS or group_bytes + size > GROUP_BYTES):
            commits.append(join_records(payloads[first:number]))
            counts.append(number - first)
            first, group_bytes = number, 0
        group_bytes += size + 4  # with its length prefix
    commits.append(join_records(payloads[first:]))
    counts.append(len(payloads) - first)
    return commits, counts


def _check_payloads(payloads: Sequence[bytes]) -> None:
    for payload in payloads:
        if not isinstance(payload, BYTES_LIKE):
            raise TypeError(f"transaction payloads must be bytes, got {type(payload).__name__}")
        if len(payload) > MAX_COMMIT_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes exceeds the commit limit {MAX_COMMIT_PAYLOAD}")


# ---------------------------------------------------------------------------------------------------
# Read-only access to a directory (no lock, no repairs): tools, tests, inspecting a live database.


def _read_only_refs(directory: Path | str) -> list[SegmentRef]:
    files = list_segment_files(Path(directory))
    return [
        SegmentRef(base, path, tolerate_torn_tail=number == len(files) - 1)
        for number, (base, path) in enumerate(files)
    ]


def commits_from(directory: Path | str, offset: int = 0) -> Iterator[Commit]:
    """Verified commits of the log in `directory` without opening it for writing."""
    return iter_commits_from(_read_only_refs(directory), offset)


def transactions_from(directory: Path | str, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset, payload) pairs of the log in `directory` without opening it for writing.

    A torn tail at the end of the newest segment ends the iteration with a logged warning; corruption
    anywhere else raises `CommitlogCorruptError`.
    """
    return iter_transactions_from(_read_only_refs(directory), offset)


def fold_transactions(directory: Path | str, offset: int, visitor: Callable[[int, TxRecord], object]) -> int:
    """Read-only `Commitlog.fold_transactions` over the log in `directory`."""
    return fold_transactions_from(_read_only_refs(directory), offset, visitor)


def inspect_log(directory: Path | str, options: CommitlogOptions | None = None) -> OpenReport:
    """What `Commitlog.open` would find, without locking, repairing or writing anything.

    `indexes_rebuilt` lists the indexes an open would rebuild; `torn_tail` what it would cut off.
    """
    directory = Path(directory)
    if not list_segment_files(directory):
        return OpenReport(next_offset=0, segments=(), created=True)
    scans = _scan_directory(directory, options or CommitlogOptions())
    return OpenReport(
        next_offset=scans[-1].next_offset,
        segments=tuple(SegmentSummary(s.base_offset, s.path, s.end_position, s.next_offset) for s in scans),
        torn_tail=scans[-1].torn_tail,
        indexes_rebuilt=tuple(
            s.path.with_name(index_file_name(s.base_offset)) for s in scans if s.index_problem is not None
        ),
    )


def _scan_directory(directory: Path, options: CommitlogOptions) -> list[SegmentScan]:
    """Check every segment's header and tail (all of it where needed) and that the offsets join up."""
    files = list_segment_files(directory)
    scans: list[SegmentScan] = []
    for number, (base, path) in enumerate(files):
        is_head = number == len(files) - 1
        scan = scan_segment(
            path,
            base,
            options.offset_index_interval_bytes,
            load_full_index=is_head,
            force_full_scan=options.verify_all_on_open,
            tolerate_torn_tail=is_head,
        )
        if scans and base != scans[-1].next_offset:
            raise CommitlogCorruptError(
                path,
                scans[-1].next_offset,
                f"segment starts at offset {base} but the previous one ended at {scans[-1].next_offset}",
            )
        scans.append(scan)
    return scans


def _write_scanned_index(scan: SegmentScan) -> Path:
    assert scan.index is not None
    path = scan.path.with_name(index_file_name(scan.base_offset))
    logger.warning("commitlog %s: rebuilding offset index (%s)", scan.path, scan.index_problem or "stale")
    write_index_file(path, scan.base_offset, scan.index)
    return path


__all__ = [
    "Commit",
    "Commitlog",
    "CommitlogOptions",
    "OpenReport",
    "SegmentSummary",
    "TornTail",
    "commits_from",
    "fold_transactions",
    "inspect_log",
    "transactions_from",
]
