"""Snapshots: the full contents of every table at a transaction offset, one checksummed file each.

`{directory}/{offset:020}.snapshot` is written to a temp file, fsynced, renamed into place and the
directory fsynced, so a snapshot file either is complete or does not exist. Rows are opaque bytes (the
encoded rows); `meta` is whatever the caller wants restored alongside (schema version, module hash...).
Byte layout: docs/commitlog-format.md. Opening picks the newest snapshot that verifies; corrupt ones are
skipped, logged and listed in `SnapshotRepo.skipped`. Snapshots and commitlog segments are never deleted
here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import RawIOBase
from pathlib import Path

from crc32c import crc32c

from spacetimedb.commitlog.errors import CommitlogDecodeError
from spacetimedb.commitlog.txdata import BYTES_LIKE, decode_uvarint, encode_uvarint
from spacetimedb.fsutil import fsync_directory

from .errors import SnapshotError

logger = logging.getLogger(__name__)

SNAPSHOT_MAGIC = b"STDBSNAP"
SNAPSHOT_END_MAGIC = b"SNAPEND!"
SNAPSHOT_VERSION = 1
SNAPSHOT_SUFFIX = ".snapshot"
_HEADER = struct.Struct("<8sB3xQI")  # magic, version, reserved, tx offset, table count
_TRAILER = struct.Struct("<QI8s")  # bytes before the trailer, CRC32C of them, end magic
_U32 = struct.Struct("<I")
_NAME = re.compile(r"^(\d{20})\.snapshot$")
_WRITE_CHUNK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    offset: int  # the state after the transaction with this offset
    tables: dict[int, list[bytes]]
    meta: bytes = b""
    path: Path | None = None


@dataclass(frozen=True)
class SkippedSnapshot:
    path: Path
    reason: str


def snapshot_file_name(offset: int) -> str:
    return f"{offset:020d}{SNAPSHOT_SUFFIX}"


class SnapshotRepo:
    """The snapshot files of one database."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        # Snapshots `latest` passed over because they did not verify, oldest report first.
        self.skipped: list[SkippedSnapshot] = []

    def offsets(self) -> list[int]:
        """Offsets of the snapshot files present (verified or not), ascending."""
        if not self.directory.is_dir():
            return []
        found = [int(m.group(1)) for entry in self.directory.iterdir() if (m := _NAME.match(entry.name))]
        return sorted(found)

    def path_for(self, offset: int) -> Path:
        return self.directory / snapshot_file_name(offset)

    def write(self, offset: int, tables: Mapping[int, Sequence[bytes]], meta: bytes = b"") -> Path:
        """Atomically write the snapshot of the state after transaction `offset`; return its path."""
        if not 0 <= offset < 1 << 64:
            raise ValueError(f"snapshot offset must be a u64, got {offset}")
        for table_id in tables:
            if not 0 <= table_id < 1 << 32:
                raise ValueError(f"table id must be a u32, got {table_id}")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(offset)
        temp = self.directory / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(temp, "xb", buffering=0) as file:
                _write_snapshot(file, offset, tables, meta)
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        fsync_directory(self.directory)
        return path

    def read(self, offset: int) -> Snapshot:
        """Load and verify the snapshot at `offset`; `SnapshotError` if it does not verify."""
        return read_snapshot_file(self.path_for(offset))

    def latest(self, max_offset: int | None = None) -> Snapshot | None:
        """The newest snapshot that verifies with offset <= `max_offset`; corrupt ones are skipped
        (logged and appended to `skipped`). None if there is no usable snapshot."""
        for offset in reversed(self.offsets()):
            if max_offset is not None and offset > max_offset:
                continue
            path = self.path_for(offset)
            try:
                return read_snapshot_file(path)
            except (SnapshotError, OSError) as exc:
                reason = exc.reason if isinstance(exc, SnapshotError) else f"unreadable: {exc}"
                logger.warning("skipping snapshot %s: %s", path, reason)
                self.skipped.append(SkippedSnapshot(path, reason))
        return None

    def remove_temp_files(self) -> list[Path]:
        """Delete leftovers of snapshot writes interrupted by a crash (call while holding the db lock)."""
        if not self.directory.is_dir():
            return []
        removed = []
        for entry in self.directory.iterdir():
            if entry.name.startswith(".") and ".snapshot.tmp-" in entry.name:
                entry.unlink(missing_ok=True)
                removed.append(entry)
        return removed


def _write_snapshot(file: RawIOBase, offset: int, tables: Mapping[int, Sequence[bytes]], meta: bytes) -> None:
    writer = _ChecksummingWriter(file)
    writer.write(_HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, offset, len(tables)))
    writer.write(encode_uvarint(len(meta)))
    writer.write(meta)
    for table_id in sorted(tables):
        rows = tables[table_id]
        writer.write(_U32.pack(table_id) + encode_uvarint(len(rows)))
        writer.write_rows(rows)
    writer.flush()
    writer.write_raw(_TRAILER.pack(writer.length, writer.crc, SNAPSHOT_END_MAGIC))


class _ChecksummingWriter:
    """Buffers output into ~1 MiB writes and keeps a running CRC32C and length of what went through."""

    def __init__(self, file: RawIOBase) -> None:
        self._file = file
        self._parts: list[bytes] = []
        self._pending = 0
        self.crc = 0
        self.length = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._pending += len(data)
        if self._pending >= _WRITE_CHUNK:
            self.flush()

    def write_rows(self, rows: Iterable[bytes]) -> None:
        append = self._parts.append
        for row in rows:
            if not isinstance(row, BYTES_LIKE):
                raise TypeError(f"snapshot rows must be bytes, got {type(row).__name__}")
            append(encode_uvarint(len(row)))
            append(row)
            self._pending += len(row) + 1
            if self._pending >= _WRITE_CHUNK:
                self.flush()

    def flush(self) -> None:
        if self._parts:
            chunk = b"".join(self._parts)
            self._parts.clear()  # in place: write_rows holds on to this list's append
            self._pending = 0
            self.crc = crc32c(chunk, self.crc)
            self.length += len(chunk)
            self.write_raw(chunk)

    def write_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(f"write returned {written} with {len(view)} bytes left")
            view = view[written:]


def read_snapshot_file(path: Path) -> Snapshot:
    """Load and verify one snapshot file; `SnapshotError` if it is not a complete, intact snapshot."""
    name_match = _NAME.match(path.name)
    data = path.read_bytes()
    body_len = _verify_envelope(path, data)
    try:
        snapshot = _decode_body(path, data, body_len)
    except (IndexError, struct.error, CommitlogDecodeError) as exc:
        raise SnapshotError(path, f"malformed snapshot body: {exc}") from None
    if name_match and int(name_match.group(1)) != snapshot.offset:
        raise SnapshotError(
            path, f"file name says offset {name_match.group(1)}, contents say {snapshot.offset}"
        )
    return snapshot


def _verify_envelope(path: Path, data: bytes) -> int:
    if len(data) < _HEADER.size + _TRAILER.size:
        raise SnapshotError(path, f"file of {len(data)} bytes is too short to be a snapshot")
    body_len, stored_crc, end_magic = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    if end_magic != SNAPSHOT_END_MAGIC or body_len != len(data) - _TRAILER.size:
        raise SnapshotError(path, "snapshot trailer missing or damaged (truncated file?)")
    if crc32c(memoryview(data)[:body_len]) != stored_crc:
        raise SnapshotError(path, "snapshot checksum mismatch")
    magic, version, _offset, _tables = _HEADER.unpack_from(data, 0)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(path, "not a snapshot file (bad magic)")
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(path, f"unsupported snapshot version {version}")
    return int(body_len)


def _decode_body(path: Path, data: bytes, end: int) -> Snapshot:
    _magic, _version, offset, table_count = _HEADER.unpack_from(data, 0)
    meta_len, pos = decode_uvarint(data, _HEADER.size)
    if pos + meta_len > end:
        raise SnapshotError(path, "snapshot meta runs past the end")
    meta = data[pos : pos + meta_len]
    pos += meta_len
    tables: dict[int, list[bytes]] = {}
    for _ in range(table_count):
        (table_id,) = _U32.unpack_from(data, pos)
        row_count, pos = decode_uvarint(data, pos + 4)
        if row_count > end - pos or table_id in tables:
            raise SnapshotError(path, f"table {table_id} entry is inconsistent")
        rows = []
        for _ in range(row_count):
            length, pos = decode_uvarint(data, pos)
            if pos + length > end:
                raise SnapshotError(path, f"row of table {table_id} runs past the end")
            rows.append(data[pos : pos + length])
            pos += length
        tables[table_id] = rows
    if pos != end:
        raise SnapshotError(path, f"{end - pos} unexpected bytes after the last table")
    return Snapshot(offset=offset, tables=tables, meta=meta, path=path)
