"""The seam between the server process and a database's worker process: typed messages, framing, deadline slot.

Every message is a ``NamedTuple`` whose fields carry their SATS type in ``Annotated`` metadata; the messages of
one direction form a SATS sum (the tag is the message's position in its list) and travel as BSATN, each behind
a ``u32`` length. Nested message parts (``Delivery``, ``ClientCount``, ...) are NamedTuples too, so a decoded
message has named fields all the way down. The protocol is documented in ``docs/worker-protocol.md``.

The server treats its workers as hostile: a worker runs untrusted module code, so anything it sends is checked
(lengths by the decoder, sizes by ``FrameReader``, meaning by the server) and a violation kills that worker.

The deadline slot is a small shared memory page: the worker writes the monotonic time by which its current
piece of untrusted work must end (0 when idle) and what that work is; the server's supervisor reads it and kills
a worker that is past it. It costs the worker two stores per call and no system call.
"""

from __future__ import annotations

import signal
import struct
import typing
from typing import Annotated, Any, NamedTuple

from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    I64,
    IDENTITY,
    STRING,
    U8,
    U16,
    U32,
    U64,
    AlgebraicType,
    ArrayType,
    ConnectionId,
    DecodeError,
    Identity,
    ProductType,
    SumType,
    SumValue,
    codec,
    option,
)

from . import deliveries

# the largest message either side accepts; a bigger one is a protocol violation
MAX_MESSAGE_BYTES = 256 << 20
# on this signal a worker prints its threads' stacks to its stderr (faulthandler): the server asks for them before
# it kills a worker that finished nothing, to log where it was stuck
STACK_DUMP_SIGNAL = signal.SIGUSR1
# the largest request or response body of a module-defined HTTP handler (as a procedure's outbound request body)
MAX_HANDLER_BODY = 16 << 20

U8_ = Annotated[int, U8]
U16_ = Annotated[int, U16]
U32_ = Annotated[int, U32]
U64_ = Annotated[int, U64]
OPT_U64 = Annotated["int | None", option(U64)]
OPT_U32 = Annotated["int | None", option(U32)]
OPT_I64 = Annotated["int | None", option(I64)]
OPT_BYTES = Annotated["bytes | None", option(BYTES)]
OPT_STR = Annotated["str | None", option(STRING)]
BOOL_ = Annotated[bool, BOOL]
BYTES_ = Annotated[bytes, BYTES]
STR = Annotated[str, STRING]
STRS = Annotated["tuple[str, ...]", ArrayType(STRING)]
IDENTITY_ = Annotated[Identity, IDENTITY]
CONNECTION_ID_ = Annotated[ConnectionId, CONNECTION_ID]

# protocols a client may speak, as ConnectClient names them
CLIENT_PROTOCOL_V1_JSON, CLIENT_PROTOCOL_V2, CLIENT_PROTOCOL_V3 = range(3)

# backup chunks a worker may send ahead of the server's credits
BACKUP_WINDOW = 8

# CallDone statuses
CALL_COMMITTED, CALL_FAILED, CALL_OUT_OF_BUDGET, CALL_INTERNAL_ERROR = range(4)
CALL_NO_SUCH_REDUCER, CALL_BAD_ARGUMENTS, CALL_LIFECYCLE, CALL_REFUSED = range(4, 8)
CALL_NO_SPACE = 8  # the database is read-only: its disk is full


# ---- parts --------------------------------------------------------------------------------------------------


class HostSettings(NamedTuple):
    """How the worker runs its database (the server's configuration, passed on at launch)."""

    reducer_budget_micros: U64_
    load_budget_micros: U64_  # for a module's top-level code (compiling and importing it)
    hard_grace_micros: U64_
    snapshot_interval: U64_
    max_segment_size: U64_
    query_row_limit: U64_  # 0: none
    query_byte_limit: U64_  # 0: none


class Delivery(NamedTuple):
    """One encoded protocol message for one client; ``offset`` is the transaction it reflects (held back
    until durable for a client that asked for confirmed reads), None when it reflects none."""

    client: U64_
    offset: OPT_U64
    payload: BYTES_


class ClientCount(NamedTuple):
    client: U64_
    count: U32_  # type: ignore[assignment]  # shadows tuple.count on purpose: the seam names this field so


class MigrationSummary(NamedTuple):
    automatic: BOOL_
    disconnects_clients: BOOL_
    plan: STR  # the plan as text, one step per line
    plan_ansi: STR  # the same with ANSI colours
    incompatible: STRS  # one sentence per change that needs a manual migration


class SqlParam(NamedTuple):
    """The value of one ``$n`` parameter, as a literal: ``kind`` is ``number``, ``string``, ``hex``, ``bool`` or
    ``null`` (written as in SQL text), or ``text`` (read as a literal of the parameter's type is written)."""

    kind: STR
    text: STR


class StatementRows(NamedTuple):
    """One statement's answer: ``row_type`` is the BSATN of its result's product type (``type_to_bsatn``; no
    elements for DML), ``rows`` the BSATN of each row; ``command`` is the statement's verb (``SELECT``,
    ``INSERT``, ``UPDATE``, ``DELETE``, ``SET``, ``SHOW``)."""

    command: STR
    row_type: BYTES_
    rows: Annotated[tuple[bytes, ...], ArrayType(BYTES)]
    rows_inserted: U64_
    rows_deleted: U64_
    rows_updated: U64_
    duration_micros: U64_


class DatabaseStats(NamedTuple):
    clients: U32_
    subscribed_clients: U32_
    query_sets: U32_
    distinct_queries: U32_
    next_offset: U64_


# upper bounds (seconds) of the reducer-duration histogram's buckets; a last one counts the rest
DURATION_BUCKETS_SECONDS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class ReducerMetrics(NamedTuple):
    """One reducer's calls since the worker started; ``duration_buckets`` counts calls per bucket of
    ``DURATION_BUCKETS_SECONDS`` (not cumulative) and one more for longer calls."""

    reducer: STR
    calls: U64_
    failures: U64_
    duration_sum_micros: U64_
    duration_buckets: Annotated[tuple[int, ...], ArrayType(U64)]


class DatabaseMetrics(NamedTuple):
    reducers: tuple[ReducerMetrics, ...]
    commitlog_bytes: U64_
    snapshot_offset: OPT_U64  # the newest snapshot's
    snapshot_age_micros: OPT_U64  # how long ago it was written


# ---- server -> worker -----------------------------------------------------------------------------------------


class OpenDatabase(NamedTuple):
    """First message to a database worker: open the database in its directory and run it.

    ``replacement`` is a new program to run instead of the stored one, which then runs no code (the republish
    of a database whose module fails to start). ``notes`` are module-log lines the supervisor wrote while no
    worker ran (why the last one stopped): the worker appends them to the log first."""

    database: IDENTITY_
    settings: HostSettings
    replacement: OPT_BYTES
    notes: STRS
    read_only: OPT_STR  # why it must not write (its disk was full), or None


class CreateDatabase(NamedTuple):
    """First message to a database worker: create the database with this program and run ``init``."""

    database: IDENTITY_
    owner: IDENTITY_
    program: BYTES_
    settings: HostSettings


class ValidateProgram(NamedTuple):
    """First (and only) message to a throw-away worker: load ``program``; with ``current``, also plan the
    migration from it."""

    program: BYTES_
    current: OPT_BYTES
    settings: HostSettings


class ReadLog(NamedTuple):
    """First (and only) message to a throw-away worker in a database's directory: read its module log (the
    server never opens files a module could have replaced with links). Answered with ``LogContents``."""

    lines: OPT_U32


class ConnectClient(NamedTuple):
    client: U64_
    identity: IDENTITY_
    connection_id: CONNECTION_ID_
    protocol: U8_
    claims: STR  # the payload of the client's token, as JSON (``ctx.sender_auth``)


class ClientFrame(NamedTuple):
    """One WebSocket frame of a client, as received (the worker decodes it)."""

    client: U64_
    data: BYTES_


class DisconnectClient(NamedTuple):
    client: U64_


class CallReducerHttp(NamedTuple):
    """``POST /call``: a reducer, or a procedure of that name when there is no such reducer."""

    request: U64_
    reducer: STR
    args_json: STR
    caller: IDENTITY_
    claims: STR  # the payload of the caller's token, as JSON


class HttpAnswer(NamedTuple):
    """The server's answer to a worker's ``HttpFetch``: the response, or why there is none (``error``)."""

    fetch: U64_
    status: U16_
    header_names: STRS
    header_values: STRS
    body: BYTES_
    error: OPT_STR


class CallHttpHandler(NamedTuple):
    """A request to ``/v1/database/:name/route/*path``: ``path`` is what follows ``/route`` (``""`` for the bare
    ``/route``), ``uri`` the full URI the client asked for."""

    request: U64_
    method: STR
    path: STR
    uri: STR
    header_names: STRS
    header_values: STRS
    body: BYTES_


class RunSql(NamedTuple):
    """``POST /sql``: run inside a short-lived connection of the caller (``client_connected`` first), as upstream."""

    request: U64_
    sql: STR
    caller: IDENTITY_
    claims: STR  # the payload of the caller's token, as JSON


class RunSqlTyped(NamedTuple):
    """Run a script as ``RunSql`` does, answering with typed rows; ``params`` are the values of ``$1``, ..."""

    request: U64_
    sql: STR
    caller: IDENTITY_
    params: tuple[SqlParam, ...]


class DescribeSql(NamedTuple):
    """The parameter and result types of a one-statement script, checked as running it would be."""

    request: U64_
    sql: STR
    caller: IDENTITY_


class GetSchema(NamedTuple):
    request: U64_
    event_flags: BOOL_  # V9: mark event tables with ``"is_event": true`` (for this project's code generator)
    version: U8_ = 9  # the RawModuleDef version: 9 or 10


class GetProgram(NamedTuple):
    request: U64_


class UpdateModule(NamedTuple):
    request: U64_
    program: BYTES_


class TailLog(NamedTuple):
    request: U64_
    lines: OPT_U32


class FollowLog(NamedTuple):
    enabled: BOOL_


class GetStats(NamedTuple):
    request: U64_


class Cancel(NamedTuple):
    """Nobody waits for the answer to ``request`` any more (its HTTP client went away): stop it if it runs."""

    request: U64_


class QueryPast(NamedTuple):
    """First message to a throw-away worker in a database's directory: run the read-only ``sql`` on the state
    right after the transaction ``as_of_offset`` (or the last one committed at or before ``as_of_micros``), no
    later than ``last_offset`` (the running database's durable offset; None: the end of its log), replaying at
    most ``max_replay`` transactions past the nearest snapshot. Answered with ``PastAnswer`` or
    ``LaunchFailed``."""

    sql: STR
    caller: IDENTITY_
    as_of_offset: OPT_U64
    as_of_micros: OPT_I64
    last_offset: OPT_U64
    max_replay: U64_
    query_byte_limit: U64_  # 0: none


class ListTransactions(NamedTuple):
    """First message to a throw-away worker in a database's directory: describe ``limit`` transactions from
    ``first`` (None: the newest), no later than ``last_offset``. Answered with ``TransactionList`` or
    ``LaunchFailed``."""

    first: OPT_U64
    limit: U32_
    last_offset: OPT_U64
    max_replay: U64_


class GetMetrics(NamedTuple):
    request: U64_


class Shutdown(NamedTuple):
    """Finish the queued work, make everything durable, exit."""


class BackupDatabase(NamedTuple):
    """First message to a throw-away worker in a database's directory: stream a backup archive of the state
    after ``last_offset`` (a durable offset of the running database; None: the end of the log, for a database
    that is not running). Answered with ``BackupStarted``, ``BackupChunk``s (at most ``BACKUP_WINDOW`` ahead of
    the ``BackupCredit``s the server returns) and ``BackupDone``, or ``LaunchFailed``."""

    database: IDENTITY_
    last_offset: OPT_U64
    program: OPT_BYTES  # the module, when the server knows it


class BackupCredit(NamedTuple):
    """The server passed one more ``BackupChunk`` on: the worker may send one more."""


class RestoreDatabase(NamedTuple):
    """First (and only) message to a throw-away worker in a staging directory the server unpacked a verified
    archive into: open it, check it holds exactly the state after ``offset`` (from the snapshot at
    ``snapshot_offset``), make it ``database``'s, owned by ``owner``. Answered with ``Restored`` or
    ``LaunchFailed``."""

    database: IDENTITY_
    owner: IDENTITY_
    offset: U64_
    snapshot_offset: OPT_U64
    settings: HostSettings


# ---- worker -> server -----------------------------------------------------------------------------------------


class Ready(NamedTuple):
    owner: IDENTITY_
    program_hash: BYTES_
    durable_offset: OPT_U64


class LaunchFailed(NamedTuple):
    reason: STR


class Starting(NamedTuple):
    """During a launch: module code (``what``) is about to run for at most ``budget_micros``; the supervisor
    expects the worker's next message within that plus the grace, whatever the worker's own clocks say."""

    what: STR
    budget_micros: U64_


class Validated(NamedTuple):
    program_hash: BYTES_
    migration: MigrationSummary | None


class ClientAccepted(NamedTuple):
    client: U64_
    refusal: Annotated[str | None, option(STRING)]


class Deliveries(NamedTuple):
    """A batch of results: encoded messages for clients, and per client how many of its frames are done."""

    items: tuple[Delivery, ...]
    frames_done: tuple[ClientCount, ...]


class CloseClient(NamedTuple):
    client: U64_
    code: U16_
    reason: STR


class Durable(NamedTuple):
    offset: U64_


class CallDone(NamedTuple):
    request: U64_
    status: U8_
    message: STR
    offset: OPT_U64
    duration_micros: U64_
    value_json: OPT_STR  # what a procedure returned, as SATS-JSON text


class HttpFetch(NamedTuple):
    """A procedure's outbound HTTP request, which the server performs under its egress policy (the worker has
    no sockets); answered with ``HttpAnswer``. ``timeout_micros`` 0: the server's limit."""

    fetch: U64_
    method: STR
    url: STR
    header_names: STRS
    header_values: STRS
    body: BYTES_
    timeout_micros: U64_


class HandlerDone(NamedTuple):
    """An HTTP handler's response (``found`` false: no route serves the request, and nothing ran)."""

    request: U64_
    found: BOOL_
    status: U16_
    header_names: STRS
    header_values: STRS
    body: BYTES_


class SqlDone(NamedTuple):
    """``body`` is the JSON answer of ``/sql`` (or the error text when ``ok`` is false)."""

    request: U64_
    ok: BOOL_
    body: STR
    offset: OPT_U64
    no_space: BOOL_  # it failed because the database is read-only (its disk is full)
    refused: BOOL_  # the module's client_connected refused the caller (``body`` says why)


class SqlRows(NamedTuple):
    """The answer to ``RunSqlTyped``: the statements that ran, then the error that stopped the script (if any).
    ``error_kind`` names the error's class (``SqlSyntaxError``, ``SqlTimeoutError``, ...; empty without one)."""

    request: U64_
    results: tuple[StatementRows, ...]
    error: OPT_STR
    error_kind: STR
    offset: OPT_U64
    no_space: BOOL_


class SqlDescribed(NamedTuple):
    """The answer to ``DescribeSql``: ``param_types`` is the BSATN of a product type with one element per
    parameter, ``row_type`` that of the result (none for DML); or the error, as ``SqlRows`` gives it."""

    request: U64_
    param_types: BYTES_
    row_type: OPT_BYTES
    error: OPT_STR
    error_kind: STR


class SchemaAnswer(NamedTuple):
    request: U64_
    raw_json: STR  # RawModuleDef of the version asked for, as JSON


class ProgramAnswer(NamedTuple):
    request: U64_
    program: BYTES_


class UpdateDone(NamedTuple):
    request: U64_
    error: Annotated[str | None, option(STRING)]
    program_hash: BYTES_
    migration: MigrationSummary | None


class LogAnswer(NamedTuple):
    request: U64_
    lines: STRS


class LogLines(NamedTuple):
    lines: STRS


class LogContents(NamedTuple):
    """The answer to ``ReadLog``."""

    lines: STRS


class StatsAnswer(NamedTuple):
    request: U64_
    stats: DatabaseStats


class PastAnswer(NamedTuple):
    """``body`` is the ``/sql`` JSON answer (or the error when ``ok`` is false); the rest is what it cost: the
    offset read, the snapshot it started from, the transactions replayed, the time taken."""

    ok: BOOL_
    body: STR
    offset: U64_
    snapshot_offset: OPT_U64
    replayed: U64_
    micros: U64_


class TransactionList(NamedTuple):
    entries_json: STR  # a JSON array: offset, time, reducer, caller, tables (inserted/deleted/truncated)


class MetricsAnswer(NamedTuple):
    request: U64_
    metrics: DatabaseMetrics


class RequestFailed(NamedTuple):
    request: U64_
    message: STR


class Panicked(NamedTuple):
    """The worker's own machinery failed (a failed fsync, a broken invariant); it exits after this.
    ``disk_full``: it failed because the disk is full (the database then restarts read-only)."""

    reason: STR
    disk_full: BOOL_


class Writable(NamedTuple):
    """A database running read-only after a full disk has space again and writes once more."""


class BackupStarted(NamedTuple):
    """The archive that follows holds the state after ``offset`` (from the snapshot at ``snapshot_offset``)."""

    offset: U64_
    snapshot_offset: OPT_U64


class BackupChunk(NamedTuple):
    data: BYTES_


class BackupDone(NamedTuple):
    size: U64_


class Restored(NamedTuple):
    program_hash: BYTES_
    offset: U64_


TO_WORKER: tuple[type, ...] = (
    OpenDatabase,
    CreateDatabase,
    ValidateProgram,
    ReadLog,
    ConnectClient,
    ClientFrame,
    DisconnectClient,
    CallReducerHttp,
    RunSql,
    GetSchema,
    GetProgram,
    UpdateModule,
    TailLog,
    FollowLog,
    GetStats,
    Shutdown,
    Cancel,
    HttpAnswer,
    BackupDatabase,
    BackupCredit,
    RestoreDatabase,
    GetMetrics,
    QueryPast,
    ListTransactions,
    RunSqlTyped,
    DescribeSql,
    CallHttpHandler,
)
TO_SERVER: tuple[type, ...] = (
    Ready,
    LaunchFailed,
    Starting,
    Validated,
    ClientAccepted,
    Deliveries,
    CloseClient,
    Durable,
    CallDone,
    SqlDone,
    SchemaAnswer,
    ProgramAnswer,
    UpdateDone,
    LogAnswer,
    LogLines,
    LogContents,
    StatsAnswer,
    RequestFailed,
    Panicked,
    Writable,
    HttpFetch,
    BackupStarted,
    BackupChunk,
    BackupDone,
    Restored,
    MetricsAnswer,
    PastAnswer,
    TransactionList,
    SqlRows,
    SqlDescribed,
    HandlerDone,
)


# ---- SATS types of the messages ----------------------------------------------------------------------------------


# Fields that hold message parts, beyond a plain part (which the field's annotation names): arrays of parts and
# optional parts. Both the SATS type and the rebuilding of decoded values follow from this table.
_ARRAY, _OPTION = "array", "option"
_NESTED: dict[type, dict[str, tuple[str, type]]] = {
    Validated: {"migration": (_OPTION, MigrationSummary)},
    UpdateDone: {"migration": (_OPTION, MigrationSummary)},
    Deliveries: {"items": (_ARRAY, Delivery), "frames_done": (_ARRAY, ClientCount)},
    DatabaseMetrics: {"reducers": (_ARRAY, ReducerMetrics)},
    RunSqlTyped: {"params": (_ARRAY, SqlParam)},
    SqlRows: {"results": (_ARRAY, StatementRows)},
}
_PARTS: dict[Any, ProductType] = {}


def _field_kinds(cls: type) -> list[tuple[str, Any]]:
    """(name, how) per field: how is a part class, a (_ARRAY|_OPTION, part) pair, or a SATS type."""
    hints = typing.get_type_hints(cls, include_extras=True)
    nested = _NESTED.get(cls, {})
    kinds: list[tuple[str, Any]] = []
    for name in cls._fields:  # type: ignore[attr-defined]  # cls is a NamedTuple class, which its `type` annotation cannot say
        hint = hints[name]
        if name in nested:
            kinds.append((name, nested[name]))
        elif hint in _PARTS:
            kinds.append((name, hint))
        else:
            kinds.append((name, hint.__metadata__[0]))
    return kinds


def _product_type(cls: type) -> ProductType:
    elements: list[tuple[str, AlgebraicType]] = []
    for name, how in _field_kinds(cls):
        if isinstance(how, tuple):
            wrap = ArrayType if how[0] == _ARRAY else option
            elements.append((name, wrap(_PARTS[how[1]])))
        elif how in _PARTS:
            elements.append((name, _PARTS[how]))
        else:
            elements.append((name, how))
    return ProductType.of(*elements)


for _part in (
    HostSettings,
    Delivery,
    ClientCount,
    MigrationSummary,
    DatabaseStats,
    ReducerMetrics,
    DatabaseMetrics,
    SqlParam,
    StatementRows,
):
    _PARTS[_part] = _product_type(_part)


def _rebuilder(cls: type) -> Any:
    """How to turn a decoded product (a plain tuple) into ``cls``, rebuilding nested parts as NamedTuples."""
    steps: list[tuple[int, Any]] = []
    for index, (_, how) in enumerate(_field_kinds(cls)):
        if isinstance(how, tuple):
            inner = _rebuilder(how[1])
            if how[0] == _ARRAY:
                steps.append((index, lambda items, inner=inner: tuple(map(inner, items))))
            else:
                steps.append((index, lambda value, inner=inner: None if value is None else inner(value)))
        elif how in _PARTS:
            steps.append((index, _rebuilder(how)))
    make = cls._make  # type: ignore[attr-defined]  # cls is a NamedTuple class, which its `type` annotation cannot say
    if not steps:
        return make

    def rebuild(value: tuple[Any, ...]) -> Any:
        fields = list(value)
        for index, convert in steps:
            fields[index] = convert(fields[index])
        return make(fields)

    return rebuild


class _Direction:
    """The messages of one direction: their sum type, codec, and tag of each class. ``Deliveries``, sent for
    every batch of results, has a hand-written codec (tested against the generic one)."""

    def __init__(self, classes: tuple[type, ...]) -> None:
        self.classes = classes
        self.tags = {cls: tag for tag, cls in enumerate(classes)}
        self.sum_type = SumType.of(*((cls.__name__, _product_type(cls)) for cls in classes))
        self.codec = codec(self.sum_type)
        self.rebuild = [_rebuilder(cls) for cls in classes]
        self._deliveries_tag = self.tags.get(Deliveries)

    def encode(self, message: Any) -> bytes:
        tag = self.tags[type(message)]
        if tag == self._deliveries_tag:
            body = _encode_deliveries(tag, message)
        else:
            body = self.codec.encode(SumValue(tag, message))
        if len(body) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a {type(message).__name__} message of {len(body)} bytes is too large")
        return _LENGTH.pack(len(body)) + body

    def decode(self, body: bytes | memoryview) -> Any:
        if len(body) and body[0] == self._deliveries_tag:
            return _decode_deliveries(body)
        value = self.codec.decode(body)
        return self.rebuild[value.tag](value.value)

    def decode_generic(self, body: bytes | memoryview) -> Any:
        value = self.codec.decode(body)
        return self.rebuild[value.tag](value.value)

    def encode_generic(self, message: Any) -> bytes:
        return self.codec.encode(SumValue(self.tags[type(message)], message))


# annotated: the build's type-check (mypyc) may reach these before it has inferred ``deliveries``' own, and
# then fails on a module that uses one of seam's names (host/metrics.py)
_LENGTH: struct.Struct = deliveries.LENGTH
_COUNT: struct.Struct = deliveries.COUNT
_ITEM_NONE: struct.Struct = deliveries.ITEM_NONE
_ITEM_SOME: struct.Struct = deliveries.ITEM_SOME
_DONE: struct.Struct = deliveries.DONE


def _encode_deliveries(tag: int, message: Deliveries) -> bytes:
    items, done = message
    parts = [_COUNT.pack(tag, len(items))]
    append = parts.append
    none, some = _ITEM_NONE.pack, _ITEM_SOME.pack
    for client, offset, payload in items:
        append(none(client, 1, len(payload)) if offset is None else some(client, 0, offset, len(payload)))
        append(payload)
    append(_LENGTH.pack(len(done)))
    parts.extend(_DONE.pack(client, count) for client, count in done)
    return b"".join(parts)


def deliveries_builder() -> deliveries.DeliveriesBuilder:
    """A builder of one ``Deliveries`` message at a time (the worker's replies of a batch)."""
    return deliveries.DeliveriesBuilder(TO_SERVER.index(Deliveries), MAX_MESSAGE_BYTES)


def _decode_deliveries(body: bytes | memoryview) -> Deliveries:
    """``Deliveries`` from the bytes of a hostile sender: every length checked against what is there."""
    end = len(body)
    try:
        _, count = _COUNT.unpack_from(body, 0)
        pos = _COUNT.size
        if count * _ITEM_NONE.size > end - pos:
            raise DecodeError(f"{count} deliveries cannot fit in {end - pos} bytes")
        items = []
        for _ in range(count):
            client, option = _ITEM_NONE.unpack_from(body, pos)[:2]
            if option == 1:
                length = _ITEM_NONE.unpack_from(body, pos)[2]
                offset = None
                pos += _ITEM_NONE.size
            elif option == 0:
                client, _, offset, length = _ITEM_SOME.unpack_from(body, pos)
                pos += _ITEM_SOME.size
            else:
                raise DecodeError(f"invalid option tag {option}")
            if pos + length > end:
                raise DecodeError(f"a payload of {length} bytes runs past the message")
            items.append(Delivery(client, offset, bytes(body[pos : pos + length])))
            pos += length
        (count,) = _LENGTH.unpack_from(body, pos)
        pos += _LENGTH.size
        if count * _DONE.size != end - pos:
            raise DecodeError(f"{count} frame counts do not fill the {end - pos} bytes left")
        done = tuple(ClientCount(*_DONE.unpack_from(body, pos + i * _DONE.size)) for i in range(count))
    except struct.error as exc:
        raise DecodeError(f"invalid Deliveries: {exc}") from None
    return Deliveries(tuple(items), done)


TO_WORKER_MESSAGES = _Direction(TO_WORKER)
TO_SERVER_MESSAGES = _Direction(TO_SERVER)


def encode_to_worker(message: Any) -> bytes:
    """One framed server -> worker message."""
    return TO_WORKER_MESSAGES.encode(message)


def encode_to_server(message: Any) -> bytes:
    """One framed worker -> server message."""
    return TO_SERVER_MESSAGES.encode(message)


class SeamViolation(Exception):
    """The other side sent something that is not a valid message."""


class FrameReader:
    """Splits a byte stream into messages of one direction; raises ``SeamViolation`` on anything invalid."""

    def __init__(self, direction: _Direction, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._direction = direction
        self._max = max_message_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes, limit: int | None = None) -> list[Any]:
        """The messages completed by ``data`` (an incomplete one waits for more); with ``limit``, at most that
        many (the rest stay buffered: ``feed(b"", limit)`` takes the next ones)."""
        buffer = self._buffer
        buffer += data
        messages: list[Any] = []
        pos = 0
        end = len(buffer)
        decode = self._direction.decode
        with memoryview(buffer) as view:
            while end - pos >= 4 and (limit is None or len(messages) < limit):
                (length,) = _LENGTH.unpack_from(buffer, pos)
                if length > self._max:
                    raise SeamViolation(f"a message of {length} bytes is beyond the limit of {self._max}")
                if end - pos - 4 < length:
                    break
                with view[pos + 4 : pos + 4 + length] as body:
                    try:
                        messages.append(decode(body))
                    except (DecodeError, ValueError, TypeError, IndexError, KeyError, struct.error) as exc:
                        raise SeamViolation(f"an invalid message: {exc}") from None
                pos += 4 + length
        del buffer[:pos]
        return messages

    def has_message(self) -> bool:
        """Whether a whole message is buffered."""
        buffer = self._buffer
        return len(buffer) >= 4 and len(buffer) - 4 >= _LENGTH.unpack_from(buffer, 0)[0]


def to_server_reader() -> FrameReader:
    return FrameReader(TO_SERVER_MESSAGES)


def to_worker_reader() -> FrameReader:
    return FrameReader(TO_WORKER_MESSAGES)
