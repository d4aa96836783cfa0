"""The past of a database, read by a throw-away worker in its directory: a query on the state right after a
transaction (``seam.QueryPast``) and the list of transactions (``seam.ListTransactions``).

The state is rebuilt in a private in-memory ``Datastore``: the nearest snapshot at or before the transaction,
then a replay of the log up to it. Nothing touches the database (its own worker keeps serving) and no module code
runs. The cost is bounded (``max_replay`` transactions past the snapshot, else a clear refusal) and reported.
Only what is durable is read: the running database's durable offset bounds what may be asked for.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from spacetimedb.commitlog import CommitlogError, TxRecord, decode_tx_record, inspect_log, transactions_from
from spacetimedb.datastore import Datastore
from spacetimedb.datastore.schema import SCHEMA_TABLE_IDS, SYSTEM_TABLES
from spacetimedb.db import replay_transactions
from spacetimedb.durability import SnapshotError, SnapshotRepo
from spacetimedb.protocol import seam
from spacetimedb.sats import Identity
from spacetimedb.sql import (
    QueryLimits,
    SqlError,
    SqlUnsupportedError,
    compile_statement,
    execute,
    parse_script,
)
from spacetimedb.sql.run import is_read_only, result_json

from .channel import Channel
from .throwaway import answer_and_exit

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class PastError(Exception):
    """The past asked for cannot be read; ``str()`` says why."""


@dataclass(frozen=True)
class PastState:
    datastore: Datastore
    offset: int
    snapshot_offset: int | None
    replayed: int
    seconds: float


@dataclass(frozen=True)
class _Log:
    directory: Path
    first_offset: int  # of the oldest segment kept
    last_offset: int  # the newest transaction that may be read


def _log(directory: Path, last_offset: int | None) -> _Log:
    report = inspect_log(directory / "clog")
    if not report.segments:
        raise PastError("the database has no transactions")
    end = report.next_offset - 1
    return _Log(
        directory, report.segments[0].base_offset, end if last_offset is None else min(end, last_offset)
    )


def rebuild(
    log: _Log,
    offset: int,
    max_replay: int,
    *,
    from_offset: int | None = None,
    system_only: bool = False,
    before_each: Callable[[int, TxRecord, Datastore], None] | None = None,
) -> PastState:
    """The state right after ``offset``; with ``from_offset``, the replay starts at or before it (so that
    ``before_each`` sees every transaction from there). ``system_only`` rebuilds only the system tables (the
    schema: enough to name tables)."""
    started = time.perf_counter()
    if offset > log.last_offset:
        raise PastError(f"offset {offset} is past the last durable transaction, {log.last_offset}")
    base = offset if from_offset is None else min(from_offset, offset)
    snapshots = SnapshotRepo(log.directory / "snapshots")
    snapshot = snapshots.latest(max_offset=base - 1 if from_offset is not None else base)
    start = 0 if snapshot is None else snapshot.offset + 1
    if start < log.first_offset:
        oldest = snapshots.offsets()
        raise PastError(
            f"offset {base} is before the oldest state kept: the log starts at offset {log.first_offset}"
            + (f" and the oldest snapshot is at {oldest[0]}" if oldest else "")
        )
    if offset - start + 1 > max_replay:
        raise PastError(
            f"reading offset {offset} would replay {offset - start + 1} transactions past the nearest snapshot "
            f"({'none' if snapshot is None else snapshot.offset}), more than the limit of {max_replay} "
            "(--as-of-max-replay)"
        )
    datastore = Datastore()
    if snapshot is not None:
        tables = snapshot.tables
        datastore.import_rows(
            {t: r for t, r in tables.items() if t in SYSTEM_TABLES} if system_only else tables
        )
    replayed = 0
    if start <= offset:
        transactions = transactions_from(log.directory / "clog", start)
        if system_only:
            transactions = _schema_only(transactions, before_each)
            before_each = None
        replayed = replay_transactions(datastore, transactions, start, offset, before_each=before_each)
    return PastState(
        datastore,
        offset,
        None if snapshot is None else snapshot.offset,
        replayed,
        time.perf_counter() - started,
    )


def _schema_only(transactions: Any, before_each: Any) -> Any:
    """The transactions with only their schema rows, after ``before_each`` saw each whole."""
    for offset, payload in transactions:
        record = decode_tx_record(payload)
        if before_each is not None:
            before_each(offset, record, None)
        record.inserts = [(t, rows) for t, rows in record.inserts if t in SCHEMA_TABLE_IDS]
        record.deletes = [(t, rows) for t, rows in record.deletes if t in SCHEMA_TABLE_IDS]
        record.truncates = [t for t in record.truncates if t in SCHEMA_TABLE_IDS]
        yield offset, record.encode()


def offset_at(log: _Log, micros: int) -> int:
    """The last transaction committed at or before ``micros`` (µs since the epoch)."""
    found: int | None = None
    first_time: int | None = None
    for offset, payload in transactions_from(log.directory / "clog", log.first_offset):
        if offset > log.last_offset:
            break
        inputs = decode_tx_record(payload).inputs
        if inputs is not None:
            if first_time is None:
                first_time = inputs.timestamp_us
            if inputs.timestamp_us > micros:
                break
        found = offset
    if found is None or (first_time is not None and first_time > micros):
        shown = "none" if first_time is None else _iso(first_time)
        raise PastError(
            f"no transaction kept was committed at or before {_iso(micros)} (the oldest: {shown})"
        )
    return found


def query(state: PastState, text: str, caller: Identity, limits: QueryLimits) -> str:
    """The ``/sql`` JSON answer of read-only ``text`` on ``state``."""
    statements = parse_script(text)
    if not statements:
        raise SqlUnsupportedError("Empty SQL query")
    if not all(is_read_only(statement) for statement in statements):
        raise SqlUnsupportedError("a query of the past only reads: SELECT (or SHOW), no writes")
    results = []
    tx = state.datastore.begin_tx()
    try:
        for statement in statements:
            started = time.perf_counter()
            result = execute(compile_statement(statement, tx, caller, True), tx, limits)
            results.append(result_json(result, int((time.perf_counter() - started) * 1e6)))
    finally:
        tx.release()
    return json.dumps(results)


def _iso(micros: int) -> str:
    return (
        (_EPOCH + dt.timedelta(microseconds=micros)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


# ---- the throw-away worker's side -----------------------------------------------------------------------------


def serve_past_query(request: seam.QueryPast, directory: Path | None, channel: Channel) -> NoReturn:
    try:
        if directory is None:
            raise PastError("an in-memory database keeps no past")
        log = _log(directory, request.last_offset)
        offset = request.as_of_offset
        if offset is None:
            assert request.as_of_micros is not None
            offset = offset_at(log, request.as_of_micros)
        state = rebuild(log, offset, request.max_replay)
    except (PastError, CommitlogError, SnapshotError, OSError, RuntimeError) as exc:
        answer_and_exit(channel, seam.LaunchFailed(str(exc)))
    limits = QueryLimits(None, request.query_byte_limit or None)
    cost = (state.offset, state.snapshot_offset, state.replayed, int(state.seconds * 1e6))
    try:
        body = query(state, request.sql, request.caller, limits)
    except SqlError as exc:
        answer_and_exit(channel, seam.PastAnswer(False, str(exc), *cost))
    answer_and_exit(channel, seam.PastAnswer(True, body, *cost))


def serve_transaction_list(
    request: seam.ListTransactions, directory: Path | None, channel: Channel
) -> NoReturn:
    try:
        if directory is None:
            raise PastError("an in-memory database keeps no log")
        entries = list_transactions(
            _log(directory, request.last_offset), request.first, request.limit, request.max_replay
        )
    except (PastError, CommitlogError, SnapshotError, OSError, RuntimeError) as exc:
        answer_and_exit(channel, seam.LaunchFailed(str(exc)))
    answer_and_exit(channel, seam.TransactionList(json.dumps(entries)))


def list_transactions(log: _Log, first: int | None, limit: int, max_replay: int) -> list[dict[str, Any]]:
    """Offset, time, reducer, caller and rows inserted and deleted per table of ``limit`` transactions from
    ``first`` (None: the newest ones). Tables are named as they are at the end of the range (one dropped by
    then shows as ``table ID``)."""
    if first is None:
        first = max(log.first_offset, log.last_offset - limit + 1)
    if first > log.last_offset:
        return []
    last = min(log.last_offset, first + limit - 1)
    entries: list[tuple[dict[str, Any], dict[int, list[int]]]] = []

    def note(offset: int, record: TxRecord, datastore: Datastore | None) -> None:
        if first <= offset <= last:  # the replay may look at the record past the range to know it is done
            entries.append(_entry(offset, record))

    state = rebuild(log, last, max_replay, from_offset=first, system_only=True, before_each=note)
    names = {table_id: table.name for table_id, table in state.datastore.tables.items()}
    listed = []
    for entry, counts in entries:
        entry["tables"] = {
            names.get(table_id, f"table {table_id}"): {
                "inserted": c[0],
                "deleted": c[1],
                "truncated": bool(c[2]),
            }
            for table_id, c in sorted(counts.items())
        }
        listed.append(entry)
    return listed


def _entry(offset: int, record: TxRecord) -> tuple[dict[str, Any], dict[int, list[int]]]:
    counts: dict[int, list[int]] = {}
    for table_id, rows in record.inserts:
        counts.setdefault(table_id, [0, 0, 0])[0] += len(rows)
    for table_id, rows in record.deletes:
        counts.setdefault(table_id, [0, 0, 0])[1] += len(rows)
    for table_id in record.truncates:
        counts.setdefault(table_id, [0, 0, 0])[2] = 1
    inputs = record.inputs
    entry: dict[str, Any] = {
        "offset": offset,
        "time": None if inputs is None else _iso(inputs.timestamp_us),
        "reducer": None if inputs is None else inputs.reducer_name,
        "caller": None if inputs is None else Identity.from_le_bytes(inputs.caller_identity).to_hex(),
    }
    return entry, counts
