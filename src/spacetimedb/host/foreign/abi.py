"""The host side of SpacetimeDB's module ABI, shared by the WASM and the JS engines.

A foreign module (a Rust or C# WASM module, a TypeScript bundle) reaches the database only through syscalls.
Both of SpacetimeDB's ABIs are thin wrappers over the same set of operations, which ``InstanceEnv`` implements
over the current transaction: rows move as BSATN bytes, tables and indexes are named by datastore ids the module
asks for by name, scans hand out iterator handles, and failures are ``HostCallError``s carrying SpacetimeDB's
errno (``crates/primitives/src/errno.rs``), which each engine turns into its ABI's error (a returned u16, a
thrown error class).

One ``InstanceEnv`` exists per loaded foreign module. It reads the current transaction from the runtime's
``TxSlot`` (``slot.tx``: the reducer's ``MutTx``, or the ``ReadOnlyTx`` of a view while ``view_slot`` is used),
so nothing here keeps a transaction past a call. Writes go to the module's own tables only: the system tables
are readable, never writable, through this layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from spacetimedb import datastore as ds
from spacetimedb.module import HttpError, HttpResponse, ModuleDef
from spacetimedb.module import log as module_log_api
from spacetimedb.module.context import ImmediateScheduler, current_immediate_scheduler
from spacetimedb.module.errors import NoSuchReducerError, ReducerArgsError
from spacetimedb.module.slots import NO_TX, TxSlot
from spacetimedb.module.views import ReadOnlyError, ReadOnlyTx
from spacetimedb.sats import (
    BYTES,
    STRING,
    TIME_DURATION,
    U16,
    ArrayType,
    ConnectionId,
    DecodeError,
    EncodeError,
    Identity,
    ProductType,
    SumType,
    SumValue,
    codec,
    option,
)

from ..procedures import TransactionAborted

# ---- errno (SpacetimeDB's crates/primitives/src/errno.rs) -------------------------------------------------------

HOST_CALL_FAILURE = 1
NOT_IN_TRANSACTION = 2
BSATN_DECODE_ERROR = 3
NO_SUCH_TABLE = 4
NO_SUCH_INDEX = 5
NO_SUCH_ITER = 6
NO_SUCH_CONSOLE_TIMER = 7
NO_SUCH_BYTES = 8
NO_SPACE = 9
WRONG_INDEX_ALGO = 10
BUFFER_TOO_SMALL = 11
UNIQUE_ALREADY_EXISTS = 12
SCHEDULE_AT_DELAY_TOO_LONG = 13
INDEX_NOT_UNIQUE = 14
NO_SUCH_ROW = 15
AUTO_INC_OVERFLOW = 16
WOULD_BLOCK_TRANSACTION = 17
TRANSACTION_NOT_ANONYMOUS = 18
TRANSACTION_IS_READ_ONLY = 19
TRANSACTION_IS_MUT = 20
HTTP_ERROR = 21

ERRNO_NAMES = {
    value: name
    for name, value in globals().items()
    if name.isupper() and isinstance(value, int) and not name.startswith("_") and name != "ERRNO_NAMES"
}

# console_log levels of the ABI, in their numbering
LOG_LEVELS = ("Error", "Warn", "Info", "Debug", "Trace", "Panic")

LogSink = Callable[[str, str, "str | None", "int | None"], None]
Row = tuple[Any, ...]


class HostCallError(Exception):
    """A syscall failed with SpacetimeDB errno ``errno``."""

    def __init__(self, errno: int, detail: str = "", payload: bytes = b"") -> None:
        self.errno = errno
        self.payload = payload  # what the ABI hands the module with the errno (HTTP_ERROR: the message)
        name = ERRNO_NAMES.get(errno, f"errno {errno}")
        super().__init__(f"{name}: {detail}" if detail else name)


class BufferTooSmall(Exception):
    """The next row of an iterator needs ``needed`` bytes, more than the caller's buffer holds."""

    def __init__(self, needed: int) -> None:
        self.needed = needed
        super().__init__(f"the next row needs a buffer of {needed} bytes")


# ---- what the environment knows of a table or an index ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TableInfo:
    schema: ds.TableSchema
    row: Any  # the row's BSATN codec
    generated: tuple[int, ...]  # the sequence columns, whose values an insert writes back
    generated_codec: Any


@dataclass(frozen=True, slots=True)
class _IndexInfo:
    table: _TableInfo
    index: ds.IndexSchema
    key: Any  # the codec of the whole key: the column's value, or a product of the columns' values
    columns: tuple[Any, ...]  # per key column, its codec


_BOUND_INCLUDED, _BOUND_EXCLUDED, _BOUND_UNBOUNDED = 0, 1, 2


class InstanceEnv:
    """The syscalls of one loaded foreign module, over the transaction in ``slot`` (see the module docstring).

    ``log_sink`` receives console lines; None sends them to the module-log sink of the thread that began the
    current call (``begin_call``)."""

    def __init__(
        self,
        module_def: ModuleDef,
        slot: TxSlot,
        log_sink: LogSink | None,
        database_identity: Identity,
        view_slot: TxSlot | None = None,
    ) -> None:
        self.module_def = module_def
        self.slot = slot
        self.view_slot = view_slot
        self.database_identity = database_identity
        self._log_sink = log_sink
        self._call_sink: LogSink = module_log_api.stderr_sink
        self._immediate: ImmediateScheduler | None = None  # the host thread's, while a reducer runs
        self._in_view = False
        self._procedure: Any = None  # the ProcedureContext of the procedure running, if one is
        self._held: Any = None  # its open transaction (host.procedures.HeldTx)
        self._jwt: tuple[ConnectionId | None, str | None] = (None, None)
        self._iters: dict[int, Iterator[bytes]] = {}
        self._pending: dict[int, bytes] = {}  # an iterator's row that did not fit the last buffer
        self._next_iter = 1
        self._timers: dict[int, tuple[str, float]] = {}
        self._next_timer = 1
        self._tables: dict[int, _TableInfo] = {}
        self._checked_tx: Any = None
        self._checked_infos: dict[int, Any] = {}
        self._indexes: dict[int, _IndexInfo] = {}
        self._table_names = dict(module_def.table_aliases)
        self._index_names = dict(module_def.index_aliases)

    # -- the call in progress ------------------------------------------------------------------------------------

    def begin_call(
        self,
        connection_id: ConnectionId | None = None,
        jwt_payload: str | None = None,
        view: bool = False,
        database_identity: Identity | None = None,
        procedure: Any = None,
    ) -> None:
        """Note what the next syscalls belong to: the caller's connection and token, whether a view runs (its
        reads go through ``view_slot``), and the database's identity (the host knows it only once it runs the
        module)."""
        self._call_sink = module_log_api.get_sink()
        self._immediate = current_immediate_scheduler()
        if database_identity is not None:
            self.database_identity = database_identity
        self._jwt = (connection_id, jwt_payload)
        self._in_view = view
        self._procedure = procedure

    def end_call(self) -> None:
        """Forget the call's iterators and timers: a handle never outlives its call; a transaction a procedure
        left open is rolled back."""
        if self._held is not None:
            self._release_held().abort()
        self._procedure = None
        self._immediate = None
        self._iters.clear()
        self._pending.clear()
        self._timers.clear()
        self._jwt = (None, None)
        self._in_view = False
        self._checked_tx = None  # keeps no finished transaction alive
        self._checked_infos = {}

    def _tx(self) -> Any:
        slot = self.view_slot if self._in_view and self.view_slot is not None else self.slot
        tx = slot.tx
        if tx is NO_TX:
            raise HostCallError(NOT_IN_TRANSACTION)
        return tx

    def _schema_tx(self) -> Any:
        """What answers schema questions: the transaction itself, or the one a view's read-only wrapper reads."""
        tx = self._tx()
        return tx.tx if isinstance(tx, ReadOnlyTx) else tx

    # -- ids ------------------------------------------------------------------------------------------------------

    def table_id_from_name(self, name: str) -> int:
        canonical = self._table_names.get(name, name)
        table_id = self._schema_tx().table_id(canonical)
        if table_id is None:
            raise HostCallError(NO_SUCH_TABLE, name)
        return int(table_id)

    def index_id_from_name(self, name: str) -> int:
        canonical = self._index_names.get(name, name)
        tx = self._schema_tx()
        for table in self.module_def.tables.values():
            if not any(index.name == canonical for index in table.indexes):
                continue
            table_id = tx.table_id(table.name)
            found = None if table_id is None else tx.schema(table_id).index_named(canonical)
            if found is not None:
                return int(found.index_id)
        raise HostCallError(NO_SUCH_INDEX, name)

    def _checked(self) -> dict[int, Any]:
        """What was looked up in the current transaction (table id -> ``_TableInfo``, -index id -> ``_IndexInfo``):
        a module's syscalls cannot change the schema, so one lookup per transaction is enough."""
        tx = (self.view_slot if self._in_view and self.view_slot is not None else self.slot).tx
        if tx is NO_TX:
            raise HostCallError(NOT_IN_TRANSACTION)
        if tx is not self._checked_tx:
            self._checked_tx = tx
            self._checked_infos = {}
        return self._checked_infos

    def _table(self, table_id: int, write: bool = False) -> _TableInfo:
        checked = self._checked()
        info: _TableInfo | None = checked.get(table_id)
        if info is None:
            info = checked[table_id] = self._lookup_table(table_id)
        if write:
            if self._in_view:
                raise HostCallError(TRANSACTION_IS_READ_ONLY, "a view cannot write")
            if info.schema.is_system:
                raise HostCallError(
                    NO_SUCH_TABLE, f"`{info.schema.name}` is a system table: modules cannot write it"
                )
        return info

    def _lookup_table(self, table_id: int) -> _TableInfo:
        try:
            schema = self._schema_tx().schema(table_id)
        except ds.NoSuchTableError:
            raise HostCallError(NO_SUCH_TABLE, f"table id {table_id}") from None
        info = self._tables.get(table_id)
        if info is None or info.schema is not schema:
            generated = tuple(sorted(seq.col_pos for seq in schema.sequences))
            generated_type = ProductType.of(*((None, schema.columns[c].type) for c in generated))
            info = _TableInfo(schema, codec(schema.row_type), generated, codec(generated_type))
            self._tables[table_id] = info
        return info

    def _index(self, index_id: int, write: bool = False) -> _IndexInfo:
        checked = self._checked()
        info: _IndexInfo | None = checked.get(-1 - index_id)
        if info is None:
            info = checked[-1 - index_id] = self._lookup_index(index_id)
        if write:
            self._table(info.index.table_id, write=True)
        return info

    def _lookup_index(self, index_id: int) -> _IndexInfo:
        cached = self._indexes.get(index_id)
        if cached is not None and self._table(cached.table.schema.table_id) is cached.table:
            return cached
        for schema in self._schema_tx().schemas():
            for index in schema.indexes:
                if index.index_id == index_id:
                    table = self._table(schema.table_id)
                    types = [schema.columns[c].type for c in index.columns]
                    key_type = types[0] if len(types) == 1 else ProductType.of(*((None, t) for t in types))
                    info = _IndexInfo(table, index, codec(key_type), tuple(codec(t) for t in types))
                    self._indexes[index_id] = info
                    return info
        raise HostCallError(NO_SUCH_INDEX, f"index id {index_id}")

    # -- reading ---------------------------------------------------------------------------------------------------

    def table_row_count(self, table_id: int) -> int:
        self._table(table_id)
        return int(self._tx().count(table_id))

    def table_scan(self, table_id: int) -> int:
        info = self._table(table_id)
        return self._open_iter(info, list(self._tx().scan(table_id)))

    def index_scan_point(self, index_id: int, key: bytes) -> int:
        info = self._index(index_id)
        rows = self._point_rows(info, key)
        return self._open_iter(info.table, rows)

    def index_scan_range(
        self, index_id: int, buf: bytes, prefix_len: int, prefix_elems: int, rstart_len: int, rend_len: int
    ) -> int:
        info = self._index(index_id)
        rows = self._range_rows(info, buf, prefix_len, prefix_elems, rstart_len, rend_len)
        return self._open_iter(info.table, rows)

    def _point_rows(self, info: _IndexInfo, key: bytes) -> list[Row]:
        value = _decode(info.key, key)
        index = info.index
        return self._checked_tx.seek(index.table_id, index.index_id, value)  # type: ignore[no-any-return]  # the transaction is typed Any

    def _range_rows(
        self, info: _IndexInfo, buf: bytes, prefix_len: int, prefix_elems: int, rstart_len: int, rend_len: int
    ) -> list[Row]:
        index = info.index
        if index.algorithm != "btree":
            raise HostCallError(WRONG_INDEX_ALGO, f"index `{index.name}` is a {index.algorithm} index")
        width = len(index.columns)
        if not 0 <= prefix_elems < width or prefix_len + rstart_len + rend_len > len(buf):
            raise HostCallError(BSATN_DECODE_ERROR, "the range does not fit the index or the buffer")
        data = bytes(buf)
        prefix = self._decode_prefix(info, data[:prefix_len], prefix_elems)
        column = info.columns[prefix_elems]
        start = data[prefix_len : prefix_len + rstart_len]
        end = data[prefix_len + rstart_len : prefix_len + rstart_len + rend_len] if rend_len else start
        low, low_inclusive = _decode_bound(column, start)
        high, high_inclusive = _decode_bound(column, end)
        tx = self._tx()
        if width == 1:
            return list(tx.range(index.table_id, index.index_id, low, high, low_inclusive, high_inclusive))
        return list(
            tx.prefix_range(index.table_id, index.index_id, prefix, low, high, low_inclusive, high_inclusive)
        )

    @staticmethod
    def _decode_prefix(info: _IndexInfo, data: bytes, elems: int) -> tuple[Any, ...]:
        values = []
        pos = 0
        try:
            for part in info.columns[:elems]:
                value, pos = part.decode_from(data, pos)
                values.append(value)
        except (DecodeError, IndexError, ValueError) as exc:
            raise HostCallError(BSATN_DECODE_ERROR, f"range prefix: {exc}") from None
        if pos != len(data):
            raise HostCallError(BSATN_DECODE_ERROR, "range prefix: bytes left over")
        return tuple(values)

    def _open_iter(self, info: _TableInfo, rows: list[Row]) -> int:
        handle = self._next_iter
        self._next_iter += 1
        encode = info.row.encode
        self._iters[handle] = iter([encode(row) for row in rows])
        return handle

    def iter_advance(self, handle: int, capacity: int) -> tuple[bytes, bool]:
        """As many whole BSATN rows as fit in ``capacity`` bytes, and whether the iterator is now exhausted (an
        exhausted iterator is closed). ``BufferTooSmall`` when not even the next row fits."""
        rows = self._iters.get(handle)
        if rows is None:
            raise HostCallError(NO_SUCH_ITER, f"iterator {handle}")
        out = bytearray()
        row = self._pending.pop(handle, None)
        while True:
            if row is None:
                row = next(rows, None)
                if row is None:
                    del self._iters[handle]
                    return bytes(out), True
            if len(out) + len(row) > capacity:
                self._pending[handle] = row
                if not out:
                    raise BufferTooSmall(len(row))
                return bytes(out), False
            out += row
            row = None

    def iter_close(self, handle: int) -> None:
        if self._iters.pop(handle, None) is None:
            raise HostCallError(NO_SUCH_ITER, f"iterator {handle}")
        self._pending.pop(handle, None)

    # -- writing ---------------------------------------------------------------------------------------------------

    def insert(self, table_id: int, row: bytes) -> bytes:
        """Insert a BSATN row; returns the BSATN of its generated (auto-increment) columns, as stored."""
        info = self._table(table_id, write=True)
        values = _decode(info.row, row)
        try:
            stored = self._checked_tx.insert(table_id, values)
        except _WRITE_ERRORS as exc:
            raise _write_refused(exc) from None
        return _generated(info, stored)

    def update(self, table_id: int, index_id: int, row: bytes) -> bytes:
        """Replace the row with ``row``'s key in the unique index ``index_id``; returns the generated columns."""
        info = self._table(table_id, write=True)
        index = self._index(index_id)
        if index.index.table_id != table_id:
            raise HostCallError(NO_SUCH_INDEX, f"index {index_id} is not an index of table {table_id}")
        values = _decode(info.row, row)
        try:
            stored = self._checked_tx.update(table_id, index_id, values)
        except _WRITE_ERRORS as exc:
            raise _write_refused(exc) from None
        return _generated(info, stored)

    def delete_by_index_scan_point(self, index_id: int, key: bytes) -> int:
        info = self._index(index_id, write=True)
        return self._delete_rows(info.table, self._point_rows(info, key))

    def delete_by_index_scan_range(
        self, index_id: int, buf: bytes, prefix_len: int, prefix_elems: int, rstart_len: int, rend_len: int
    ) -> int:
        info = self._index(index_id, write=True)
        rows = self._range_rows(info, buf, prefix_len, prefix_elems, rstart_len, rend_len)
        return self._delete_rows(info.table, rows)

    def delete_all_by_eq(self, table_id: int, rows: bytes) -> int:
        """Delete each row of ``rows`` (a u32 count, then that many BSATN rows) that exists; returns how many."""
        info = self._table(table_id, write=True)
        data = bytes(rows)
        if len(data) < 4:
            raise HostCallError(BSATN_DECODE_ERROR, "the row list has no count")
        count = int.from_bytes(data[:4], "little")
        pos = 4
        decoded = []
        try:
            for _ in range(count):
                value, pos = info.row.decode_from(data, pos)
                decoded.append(value)
        except (DecodeError, IndexError, ValueError) as exc:
            raise HostCallError(BSATN_DECODE_ERROR, str(exc)) from None
        if pos != len(data):
            raise HostCallError(BSATN_DECODE_ERROR, "bytes left over after the rows")
        return self._delete_rows(info, decoded)

    def _delete_rows(self, info: _TableInfo, rows: list[Row]) -> int:
        tx = self._tx()
        table_id = info.schema.table_id
        return sum(1 for row in rows if tx.delete(table_id, row))

    def clear(self, table_id: int) -> int:
        self._table(table_id, write=True)
        return int(self._tx().clear(table_id))

    # -- console ----------------------------------------------------------------------------------------------------

    def console_log(
        self, level: int, message: str, target: str | None, filename: str | None, line: int
    ) -> None:
        name = LOG_LEVELS[level] if 0 <= level < len(LOG_LEVELS) else "Info"
        if name == "Panic":
            name = "Error"
        sink = self._log_sink or self._call_sink
        sink(name, message, filename or target or None, line or None)

    def console_timer_start(self, name: str) -> int:
        timer = self._next_timer
        self._next_timer += 1
        self._timers[timer] = (name, time.perf_counter())
        return timer

    def console_timer_end(self, timer: int) -> None:
        found = self._timers.pop(timer, None)
        if found is None:
            raise HostCallError(NO_SUCH_CONSOLE_TIMER, f"timer {timer}")
        name, started = found
        elapsed = time.perf_counter() - started
        self.console_log(2, f"Timing span {name!r}: {elapsed * 1e3:.3f}ms", None, None, 0)

    # -- context ------------------------------------------------------------------------------------------------------

    def schedule_immediate(self, reducer: str, args: bytes) -> None:
        """``volatile_nonatomic_schedule_immediate``: run ``reducer`` with the BSATN ``args`` right after the current
        call, in a transaction of its own, as the database. Only a reducer may ask (the host thread's scheduler is
        absent from views and procedures); an unknown reducer or arguments that do not decode fail this call."""
        if self._immediate is None or self._in_view or self._procedure is not None:
            raise HostCallError(
                HOST_CALL_FAILURE, "volatile_nonatomic_schedule_immediate works only in a reducer"
            )
        try:
            self._immediate(reducer, bytes(args))
        except (NoSuchReducerError, ReducerArgsError) as exc:
            raise HostCallError(HOST_CALL_FAILURE, str(exc)) from None

    def identity(self) -> bytes:
        """The database's identity, 32 bytes little-endian."""
        return bytes(self.database_identity.to_le_bytes())

    def get_jwt_payload(self, connection_id: bytes) -> bytes:
        """The JWT payload (JSON text) the caller of the current call connected with, when ``connection_id``
        (16 bytes little-endian) is its connection; empty otherwise."""
        current, payload = self._jwt
        if current is None or payload is None:
            return b""
        if int.from_bytes(bytes(connection_id), "little") != current.value:
            return b""
        return payload.encode()

    # -- procedures ----------------------------------------------------------------------------------------------------

    def procedure_start_mut_tx(self) -> int:
        """Begin the procedure's transaction (held open on the host thread); its timestamp in microseconds."""
        ctx = self._procedure
        if ctx is None or ctx.hold_tx is None:
            raise HostCallError(TRANSACTION_NOT_ANONYMOUS, "only a procedure can begin a transaction")
        if self._held is not None:
            raise HostCallError(WOULD_BLOCK_TRANSACTION, "the procedure's transaction is already open")
        held = ctx.hold_tx()
        self._held = held
        self.slot.tx = held.tx
        return int(held.timestamp.micros)

    def procedure_commit_mut_tx(self) -> None:
        held = self._release_held()
        try:
            held.commit()
        except TransactionAborted as exc:
            raise HostCallError(HOST_CALL_FAILURE, str(exc)) from None

    def procedure_abort_mut_tx(self) -> None:
        self._release_held().abort()

    def _release_held(self) -> Any:
        held = self._held
        if held is None:
            raise HostCallError(NOT_IN_TRANSACTION, "the procedure has no open transaction")
        self._held = None
        self.slot.tx = NO_TX
        return held

    def procedure_http_request(self, request: bytes, body: bytes) -> tuple[bytes, bytes]:
        """Send an HTTP request (SpacetimeDB's BSATN ``HttpRequest``) through the server; the BSATN
        ``HttpResponse`` and the response body. A failed request is ``HTTP_ERROR`` with the message as payload."""
        ctx = self._procedure
        if ctx is None:
            raise HostCallError(TRANSACTION_NOT_ANONYMOUS, "only a procedure can make HTTP requests")
        if self._held is not None:
            raise HostCallError(WOULD_BLOCK_TRANSACTION, "HTTP while the procedure's transaction is open")
        method, url, headers, timeout = decode_http_request(request)
        try:
            response = ctx.http.request(method, url, body=bytes(body), headers=headers, timeout=timeout)
        except HttpError as exc:
            raise HostCallError(HTTP_ERROR, str(exc), payload=_STRING.encode(str(exc))) from None
        return encode_http_response(response), bytes(response.body)


# ---- SpacetimeDB's HTTP types (crates/lib/src/http.rs), for the procedure ABI ---------------------------------------

_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_HTTP_VERSION_11 = 2  # Http09, Http10, Http11, Http2, Http3
_HTTP_HEADERS = ProductType.of(("entries", ArrayType(ProductType.of(("name", STRING), ("value", BYTES)))))
HTTP_REQUEST = ProductType.of(
    ("method", SumType.of(*_HTTP_METHODS, ("Extension", STRING))),
    ("headers", _HTTP_HEADERS),
    ("timeout", option(TIME_DURATION)),
    ("uri", STRING),
    ("version", SumType.of("Http09", "Http10", "Http11", "Http2", "Http3")),
)
HTTP_RESPONSE = ProductType.of(
    ("headers", _HTTP_HEADERS),
    ("version", SumType.of("Http09", "Http10", "Http11", "Http2", "Http3")),
    ("code", U16),
)
_STRING = codec(STRING)
_REQUEST = codec(HTTP_REQUEST)
_RESPONSE = codec(HTTP_RESPONSE)


def decode_http_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], float | None]:
    """(method, url, headers, timeout in seconds) of a BSATN ``HttpRequest``."""
    method, (entries,), timeout, uri, _version = _decode(_REQUEST, data)
    tag, extension = method
    verb = extension if tag == len(_HTTP_METHODS) else _HTTP_METHODS[tag]
    headers = [(name, bytes(value).decode("latin-1")) for name, value in entries]
    seconds = None if timeout is None else timeout.micros / 1e6
    return verb, uri, headers, seconds


def encode_http_response(response: HttpResponse) -> bytes:
    entries = [(name, value.encode("latin-1", "replace")) for name, value in response.headers]
    return bytes(_RESPONSE.encode(((entries,), SumValue(_HTTP_VERSION_11, ()), response.status)))


# ---- helpers -------------------------------------------------------------------------------------------------------


def _decode(value_codec: Any, data: bytes) -> Any:
    try:
        return value_codec.decode(bytes(data))
    except (DecodeError, IndexError, ValueError) as exc:
        raise HostCallError(BSATN_DECODE_ERROR, str(exc)) from None


def _generated(info: _TableInfo, stored: Row) -> bytes:
    """The BSATN of a stored row's generated columns, as an insert or update writes back."""
    if not info.generated:
        return b""
    return bytes(info.generated_codec.encode(tuple(stored[c] for c in info.generated)))


def _decode_bound(column: Any, data: bytes) -> tuple[Any, bool]:
    """(value or None for unbounded, inclusive) of a BSATN ``Bound<AlgebraicValue>``."""
    if not data:
        raise HostCallError(BSATN_DECODE_ERROR, "empty range bound")
    tag = data[0]
    if tag == _BOUND_UNBOUNDED and len(data) == 1:
        return None, True
    if tag not in (_BOUND_INCLUDED, _BOUND_EXCLUDED):
        raise HostCallError(BSATN_DECODE_ERROR, f"range bound tag {tag}")
    return _decode(column, data[1:]), tag == _BOUND_INCLUDED


# what a datastore write refuses with, and the errno SpacetimeDB gives for each
_WRITE_ERRNOS: dict[type[Exception], int] = {
    ds.UniqueConstraintViolation: UNIQUE_ALREADY_EXISTS,
    ds.NoSuchRowError: NO_SUCH_ROW,
    ds.IndexNotUniqueError: INDEX_NOT_UNIQUE,
    ds.SequenceExhaustedError: AUTO_INC_OVERFLOW,
    ds.NoSuchIndexError: NO_SUCH_INDEX,
    ds.NoSuchTableError: NO_SUCH_TABLE,
    ReadOnlyError: TRANSACTION_IS_READ_ONLY,
    EncodeError: BSATN_DECODE_ERROR,
}
_WRITE_ERRORS = tuple(_WRITE_ERRNOS)


def _write_refused(exc: Exception) -> HostCallError:
    errno = next(errno for kind, errno in _WRITE_ERRNOS.items() if isinstance(exc, kind))
    return HostCallError(errno, str(exc))
