"""Shared helpers for commitlog tests: deterministic payloads and small-file logs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from spacetimedb.commitlog import Commitlog, CommitlogOptions

SMALL = CommitlogOptions(max_segment_size=1024, offset_index_interval_bytes=128)


def payload_for(offset: int, size: int | None = None) -> bytes:
    """A payload that identifies its offset and varies in length (0..~90 bytes unless `size` is given)."""
    digest = hashlib.blake2b(offset.to_bytes(8, "little"), digest_size=64).digest()
    length = size if size is not None else digest[0] % 90
    stamp = offset.to_bytes(8, "little")
    return (stamp + digest * (length // 64 + 1))[: max(length, 0)] if length >= 8 else digest[:length]


def write_log(directory: Path, count: int, options: CommitlogOptions = SMALL, batch: int = 7) -> list[bytes]:
    """Append `count` transactions (in batches of `batch`), fsync, close; return the payloads."""
    payloads = [payload_for(i) for i in range(count)]
    with Commitlog.open(directory, options) as log:
        for start in range(0, count, batch):
            log.append_commits(payloads[start : start + batch])
        log.sync()
    return payloads


def read_all(directory: Path, options: CommitlogOptions = SMALL) -> tuple[list[bytes], Commitlog]:
    log = Commitlog.open(directory, options)
    return [payload for _, payload in log.transactions_from(0)], log


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.stdb.log"))


def index_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.stdb.ofs"))
