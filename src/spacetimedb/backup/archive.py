"""The backup archive: planning and writing it from a database directory, verifying and unpacking it.

An archive is an uncompressed tar stream (so ``tar tf`` lists it) with these members, in this order:

- ``module.bin``: the module program the database ran when the backup started (when known);
- ``snapshots/{offset:020}.snapshot``: the newest snapshot at or before the archive's offset, if there is one;
- ``clog/{base:020}.stdb.log``: the commitlog segments from the one holding the snapshot's offset (or the first)
  up to the archive's offset, the last one cut right after that transaction's commit;
- ``manifest.json``: what the archive is (format, version, database, offset, snapshot offset, creation time),
  every other member's size and SHA-256, and a SHA-256 of the manifest itself.

The manifest comes last because its checksums are known only once everything was written: a reader checks
every member as it streams past and judges the whole once the manifest arrives. A truncated archive has no
manifest (or a member cut short); a corrupted one fails a checksum; either is refused with what is wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from spacetimedb.commitlog import CommitlogError, SegmentSlice, inspect_log, log_slices
from spacetimedb.durability import SnapshotRepo
from spacetimedb.fsutil import fsync_directory

ARCHIVE_FORMAT = "spacetimedb-py backup"
ARCHIVE_VERSION = 1
MODULE = "module.bin"
MANIFEST = "manifest.json"
CHUNK_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 1 << 20
_COPY_BYTES = 1 << 20
_SNAPSHOT_MEMBER = re.compile(r"^snapshots/(\d{20})\.snapshot$")
_SEGMENT_MEMBER = re.compile(r"^clog/(\d{20})\.stdb\.log$")


class ArchiveError(Exception):
    """The archive cannot be written, or is not an intact backup; ``str()`` says what is wrong."""


@dataclass(frozen=True)
class BackupPlan:
    """What a backup copies: the state right after transaction ``offset``."""

    offset: int
    snapshot_offset: int | None
    snapshot_path: Path | None
    slices: tuple[SegmentSlice, ...]


@dataclass(frozen=True)
class Manifest:
    database: str  # the identity (hex) of the database backed up
    offset: int
    snapshot_offset: int | None
    created: str
    files: dict[str, tuple[int, str]]  # member name -> (size, sha256 hex)

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.files.values())


# ---- writing (in a database's worker) ---------------------------------------------------------------------------


def plan_backup(database_dir: Path, last_offset: int | None) -> BackupPlan:
    """What to copy from ``database_dir`` for the state after ``last_offset`` (None: the end of the log as it is
    now, for a database nobody writes). Every commit in the range is verified on the way."""
    clog = database_dir / "clog"
    try:
        if last_offset is None:
            last_offset = inspect_log(clog).next_offset - 1
        if last_offset < 0:
            raise ArchiveError("the database has no transactions to back up")
        snapshot = SnapshotRepo(database_dir / "snapshots").latest(max_offset=last_offset)
        first = 0 if snapshot is None else snapshot.offset
        slices = log_slices(clog, first, last_offset)
    except CommitlogError as exc:
        raise ArchiveError(f"the commitlog cannot be backed up: {exc}") from None
    if snapshot is None:
        return BackupPlan(last_offset, None, None, tuple(slices))
    return BackupPlan(last_offset, snapshot.offset, snapshot.path, tuple(slices))


def write_archive(
    plan: BackupPlan, database: str, program: bytes | None, out: Callable[[bytes], None]
) -> int:
    """Write the archive of ``plan`` to ``out`` in chunks of about ``CHUNK_BYTES``; returns its size."""
    sink = _Chunker(out)
    files: list[dict[str, Any]] = []
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]  # _Chunker is write-only, which tarfile's stub does not accept
        if program is not None:
            _add_member(tar, MODULE, io.BytesIO(program), len(program), files)
        if plan.snapshot_path is not None:
            with open(plan.snapshot_path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                _add_member(tar, f"snapshots/{plan.snapshot_path.name}", file, size, files)
        for piece in plan.slices:
            with open(piece.path, "rb") as file:
                _add_member(tar, f"clog/{piece.path.name}", file, piece.length, files)
        manifest = _manifest_bytes(plan, database, files)
        _add_member(tar, MANIFEST, io.BytesIO(manifest), len(manifest), None)
    sink.flush()
    return sink.total


def _add_member(
    tar: tarfile.TarFile, name: str, source: IO[bytes], size: int, files: list[dict[str, Any]] | None
) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, int(dt.datetime.now(dt.UTC).timestamp())
    reader = _HashingReader(source, size)
    tar.addfile(info, reader)
    if files is not None:
        files.append({"name": name, "size": size, "sha256": reader.digest.hexdigest()})


def _manifest_bytes(plan: BackupPlan, database: str, files: list[dict[str, Any]]) -> bytes:
    body: dict[str, Any] = {
        "format": ARCHIVE_FORMAT,
        "version": ARCHIVE_VERSION,
        "database": database,
        "offset": plan.offset,
        "snapshot_offset": plan.snapshot_offset,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "files": files,
    }
    body["checksum"] = _manifest_checksum(body)
    return json.dumps(body, indent=2).encode() + b"\n"


def _manifest_checksum(body: dict[str, Any]) -> str:
    rest = {key: value for key, value in body.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


class _HashingReader:
    """Reads exactly ``size`` bytes of ``source`` (a file may grow meanwhile: only that prefix belongs to the
    archive), hashing them."""

    def __init__(self, source: IO[bytes], size: int) -> None:
        self._source = source
        self._left = size
        self.digest = hashlib.sha256()

    def read(self, count: int = -1) -> bytes:
        count = self._left if count < 0 else min(count, self._left)
        data = self._source.read(count)
        self._left -= len(data)
        self.digest.update(data)
        return data


class _Chunker:
    """A write-only file that hands its bytes on in chunks of about ``CHUNK_BYTES``."""

    def __init__(self, out: Callable[[bytes], None]) -> None:
        self._out = out
        self._parts: list[bytes] = []
        self._pending = 0
        self.total = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._pending += len(data)
        self.total += len(data)
        if self._pending >= CHUNK_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._parts:
            chunk, self._parts, self._pending = b"".join(self._parts), [], 0
            self._out(chunk)


# ---- reading (wherever the bytes are) ---------------------------------------------------------------------------


def verify_archive(stream: IO[bytes]) -> Manifest:
    """Read the whole archive and check it; ``ArchiveError`` says what is wrong."""
    return _read_archive(stream, None)


def unpack_archive(stream: IO[bytes], staging: Path) -> Manifest:
    """Check the archive while writing its snapshot and commitlog into the empty directory ``staging`` (made by
    the caller, which removes it if this raises). Nothing in ``staging`` may be trusted before this returns."""
    return _read_archive(stream, staging)


def _read_archive(stream: IO[bytes], staging: Path | None) -> Manifest:
    seen: dict[str, tuple[int, str]] = {}
    manifest: bytes | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if manifest is not None:
                    raise ArchiveError(
                        f"the member {member.name!r} follows the manifest, which must come last"
                    )
                _check_member(member, seen)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                if member.name == MANIFEST:
                    manifest = source.read()
                else:
                    seen[member.name] = _copy_member(member, source, staging)
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"the archive is damaged or truncated: {exc}") from None
    if manifest is None:
        raise ArchiveError("the archive has no manifest: it is truncated, or not a backup archive")
    parsed = _parse_manifest(manifest)
    _compare(parsed, seen)
    if staging is not None:
        for directory in (staging / "clog", staging / "snapshots", staging):
            if directory.is_dir():
                fsync_directory(directory)
    return parsed


def _check_member(member: tarfile.TarInfo, seen: dict[str, tuple[int, str]]) -> None:
    name = member.name
    if not (name in (MODULE, MANIFEST) or _SNAPSHOT_MEMBER.match(name) or _SEGMENT_MEMBER.match(name)):
        raise ArchiveError(f"the archive holds an unexpected member {name!r}: not a backup archive")
    if not member.isreg():
        raise ArchiveError(f"the member {name!r} is not a regular file")
    if name in seen:
        raise ArchiveError(f"the member {name!r} appears twice")
    if name == MANIFEST and member.size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"the manifest is {member.size} bytes, more than a manifest can be")


def _copy_member(member: tarfile.TarInfo, source: IO[bytes], staging: Path | None) -> tuple[int, str]:
    """Hash the member (writing it under ``staging`` unless it is the module); returns (size, sha256)."""
    digest = hashlib.sha256()
    target = None if staging is None or member.name == MODULE else staging / member.name
    fd = None
    if target is not None:
        target.parent.mkdir(exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    size = 0
    try:
        while data := source.read(_COPY_BYTES):
            digest.update(data)
            size += len(data)
            if fd is not None:
                _write_all(fd, data)
        if fd is not None:
            os.fsync(fd)
    finally:
        if fd is not None:
            os.close(fd)
    if size != member.size:
        raise ArchiveError(f"the member {member.name!r} is cut short ({size} of {member.size} bytes)")
    return size, digest.hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _parse_manifest(data: bytes) -> Manifest:
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"the manifest is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError("the manifest does not describe a spacetimedb-py backup")
    if body.get("version") != ARCHIVE_VERSION:
        raise ArchiveError(
            f"the archive has format version {body.get('version')!r}; this server reads version {ARCHIVE_VERSION}"
        )
    if body.get("checksum") != _manifest_checksum(body):
        raise ArchiveError("the manifest fails its checksum: it was changed or damaged")
    try:
        files = {str(f["name"]): (int(f["size"]), str(f["sha256"])) for f in body["files"]}
        offset, snapshot = int(body["offset"]), body["snapshot_offset"]
        manifest = Manifest(
            str(body["database"]),
            offset,
            None if snapshot is None else int(snapshot),
            str(body["created"]),
            files,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(f"the manifest is incomplete: {exc!r}") from None
    return manifest


def _compare(manifest: Manifest, seen: dict[str, tuple[int, str]]) -> None:
    missing = sorted(manifest.files.keys() - seen.keys())
    if missing:
        raise ArchiveError(
            f"the archive lacks {', '.join(missing)}, which its manifest lists: it is truncated"
        )
    extra = sorted(seen.keys() - manifest.files.keys())
    if extra:
        raise ArchiveError(f"the archive holds {', '.join(extra)}, which its manifest does not list")
    for name, (size, sha256) in sorted(seen.items()):
        if (size, sha256) != manifest.files[name]:
            raise ArchiveError(f"the member {name!r} fails its checksum: the archive is corrupt")
    snapshots = [name for name in seen if _SNAPSHOT_MEMBER.match(name)]
    expected = (
        [] if manifest.snapshot_offset is None else [f"snapshots/{manifest.snapshot_offset:020d}.snapshot"]
    )
    if snapshots != expected:
        raise ArchiveError("the archive's snapshot does not match the offset its manifest states")
    if not any(_SEGMENT_MEMBER.match(name) for name in seen):
        raise ArchiveError("the archive holds no commitlog")
