"""The commitlog: segmented, checksummed, append-only log files, their offset indexes, and the transaction
record format (`txdata`).

Owns everything about the bytes on disk under a database's `clog/` directory (documented in
docs/commitlog-format.md). Imports nothing else from `spacetimedb`; `durability` builds on it.
"""

from __future__ import annotations

from .errors import (
    CommitlogClosedError,
    CommitlogCorruptError,
    CommitlogDecodeError,
    CommitlogError,
    CommitlogFailedError,
    CommitlogFormatError,
    CommitlogLockedError,
)
from .log import (
    Commit,
    Commitlog,
    CommitlogOptions,
    OpenReport,
    SegmentSummary,
    TornTail,
    commits_from,
    fold_transactions,
    inspect_log,
    transactions_from,
)
from .slices import SegmentSlice, log_slices
from .txdata import TxInputs, TxRecord, decode_tx_record, encode_commit_record, encode_tx_record

__all__ = [
    "Commit",
    "Commitlog",
    "CommitlogClosedError",
    "CommitlogCorruptError",
    "CommitlogDecodeError",
    "CommitlogError",
    "CommitlogFailedError",
    "CommitlogFormatError",
    "CommitlogLockedError",
    "CommitlogOptions",
    "OpenReport",
    "SegmentSlice",
    "SegmentSummary",
    "TornTail",
    "TxInputs",
    "TxRecord",
    "commits_from",
    "decode_tx_record",
    "encode_commit_record",
    "encode_tx_record",
    "fold_transactions",
    "inspect_log",
    "log_slices",
    "transactions_from",
]
