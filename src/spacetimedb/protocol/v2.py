"""SpacetimeDB's client protocol v2 (``v2.bsatn.spacetimedb``) and its v3 framing (``v3.bsatn.spacetimedb``).

Messages are BSATN sums; their SATS types are declared here (``CLIENT_MESSAGE``, ``SERVER_MESSAGE``) so that any
message can be encoded or decoded generically. The messages a server sends on every transaction (row lists,
transaction updates, reducer results) also have hand-written encoders that splice already-encoded rows into
the output without decoding them, so a row is encoded once and its bytes reused for every subscriber.

Framing: a server frame is a one-byte compression tag (0 none, 1 brotli, 2 gzip) then the body; in v2 the body is
one message, in v3 one or more concatenated messages. Client frames carry no tag; v3 client frames may also
concatenate messages.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from spacetimedb.sats import (
    BYTES,
    CONNECTION_ID,
    IDENTITY,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    ArrayType,
    ConnectionId,
    DecodeError,
    Identity,
    ProductType,
    SumType,
    SumValue,
    Timestamp,
    codec,
    option,
    result,
)

from . import messages

PROTOCOL_V2 = "v2.bsatn.spacetimedb"
PROTOCOL_V3 = "v3.bsatn.spacetimedb"

COMPRESSION_NONE = 0
COMPRESSION_BROTLI = 1
COMPRESSION_GZIP = 2
# Like SpacetimeDB: only bodies above this size are worth compressing.
COMPRESS_THRESHOLD = 1024

# ---- SATS types of the messages ---------------------------------------------------------------------------

QUERY_SET_ID = ProductType.of(("id", U32))
ROW_SIZE_HINT = SumType.of(("FixedSize", U16), ("RowOffsets", ArrayType(U64)))
BSATN_ROW_LIST = ProductType.of(("size_hint", ROW_SIZE_HINT), ("rows_data", BYTES))
SINGLE_TABLE_ROWS = ProductType.of(("table", STRING), ("rows", BSATN_ROW_LIST))
QUERY_ROWS = ProductType.of(("tables", ArrayType(SINGLE_TABLE_ROWS)))
TABLE_UPDATE_ROWS = SumType.of(
    ("PersistentTable", ProductType.of(("inserts", BSATN_ROW_LIST), ("deletes", BSATN_ROW_LIST))),
    ("EventTable", ProductType.of(("events", BSATN_ROW_LIST))),
)
TABLE_UPDATE = ProductType.of(("table_name", STRING), ("rows", ArrayType(TABLE_UPDATE_ROWS)))
QUERY_SET_UPDATE = ProductType.of(("query_set_id", QUERY_SET_ID), ("tables", ArrayType(TABLE_UPDATE)))
TRANSACTION_UPDATE = ProductType.of(("query_sets", ArrayType(QUERY_SET_UPDATE)))
REDUCER_OUTCOME = SumType.of(
    ("Ok", ProductType.of(("ret_value", BYTES), ("transaction_update", TRANSACTION_UPDATE))),
    "OkEmpty",
    ("Err", BYTES),
    ("InternalError", STRING),
)
PROCEDURE_STATUS = SumType.of(("Returned", BYTES), ("InternalError", STRING))

CLIENT_MESSAGE = SumType.of(
    (
        "Subscribe",
        ProductType.of(
            ("request_id", U32), ("query_set_id", QUERY_SET_ID), ("query_strings", ArrayType(STRING))
        ),
    ),
    ("Unsubscribe", ProductType.of(("request_id", U32), ("query_set_id", QUERY_SET_ID), ("flags", U8))),
    ("OneOffQuery", ProductType.of(("request_id", U32), ("query_string", STRING))),
    ("CallReducer", ProductType.of(("request_id", U32), ("flags", U8), ("reducer", STRING), ("args", BYTES))),
    (
        "CallProcedure",
        ProductType.of(("request_id", U32), ("flags", U8), ("procedure", STRING), ("args", BYTES)),
    ),
)
SERVER_MESSAGE = SumType.of(
    (
        "InitialConnection",
        ProductType.of(("identity", IDENTITY), ("connection_id", CONNECTION_ID), ("token", STRING)),
    ),
    (
        "SubscribeApplied",
        ProductType.of(("request_id", U32), ("query_set_id", QUERY_SET_ID), ("rows", QUERY_ROWS)),
    ),
    (
        "UnsubscribeApplied",
        ProductType.of(("request_id", U32), ("query_set_id", QUERY_SET_ID), ("rows", option(QUERY_ROWS))),
    ),
    (
        "SubscriptionError",
        ProductType.of(("request_id", option(U32)), ("query_set_id", QUERY_SET_ID), ("error", STRING)),
    ),
    ("TransactionUpdate", TRANSACTION_UPDATE),
    ("OneOffQueryResult", ProductType.of(("request_id", U32), ("result", result(QUERY_ROWS, STRING)))),
    (
        "ReducerResult",
        ProductType.of(("request_id", U32), ("timestamp", TIMESTAMP), ("result", REDUCER_OUTCOME)),
    ),
    (
        "ProcedureResult",
        ProductType.of(
            ("status", PROCEDURE_STATUS),
            ("timestamp", TIMESTAMP),
            ("total_host_execution_duration", TIME_DURATION),
            ("request_id", U32),
        ),
    ),
)

# client message tags (each a ``Final`` literal: compiled, a constant rather than a lookup of a global)
SUBSCRIBE: Final = 0
UNSUBSCRIBE: Final = 1
ONE_OFF_QUERY: Final = 2
CALL_REDUCER: Final = 3
CALL_PROCEDURE: Final = 4
# server message tags
INITIAL_CONNECTION: Final = 0
SUBSCRIBE_APPLIED: Final = 1
UNSUBSCRIBE_APPLIED: Final = 2
SUBSCRIPTION_ERROR: Final = 3
TRANSACTION_UPDATE_TAG: Final = 4
ONE_OFF_QUERY_RESULT: Final = 5
REDUCER_RESULT: Final = 6
PROCEDURE_RESULT: Final = 7
# ReducerOutcome tags
OUTCOME_OK: Final = 0
OUTCOME_OK_EMPTY: Final = 1
OUTCOME_ERR: Final = 2
OUTCOME_INTERNAL_ERROR: Final = 3
UNSUBSCRIBE_SEND_DROPPED_ROWS: Final = 1

_client_codec = codec(CLIENT_MESSAGE)
_server_codec = codec(SERVER_MESSAGE)

_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_I64: Final = struct.Struct("<q")
_pack_u32: Final = _U32.pack
_TAG: Final = tuple(bytes((i,)) for i in range(256))
# what the per-call paths read of ``messages`` (compiled, a ``Final`` is a static, ``messages.X`` two lookups)
_COMMITTED: Final = messages.COMMITTED
_FAILED: Final = messages.FAILED
_CALL_REDUCER_MESSAGE: Final = messages.CallReducer


# ---- decoding client messages ------------------------------------------------------------------------------


class ClientMessage(NamedTuple):
    """A decoded client message: its tag (SUBSCRIBE, ...) and fields in protocol order."""

    tag: int
    fields: tuple[Any, ...]


# a CallReducer: tag u8, request_id u32, flags u8, the reducer's name (u32 length, UTF-8), args (u32 length, BSATN)
_CALL_HEAD_SIZE: Final = 10  # the bytes before the name's


def _decode_call_reducer(frame: bytes, pos: int, end: int) -> tuple[ClientMessage, int]:
    """CallReducer, the message sent most by far, decoded by hand (same checks as the generic codec)."""
    request_id, flags, reducer, args, after = _call_reducer_fields(frame, pos, end)
    return ClientMessage(CALL_REDUCER, (request_id, flags, reducer, args)), after


def _call_reducer_fields(frame: bytes, pos: int, end: int) -> tuple[int, int, str, bytes, int]:
    """(request id, flags, reducer, args, position after the message) of the CallReducer at ``pos``. The frame
    is ``bytes``: compiled, its bytes are read as native ints and slicing it is a direct call, where ``struct``
    would be a method looked up by name, a tuple and a boxed int per field."""
    name_start = pos + _CALL_HEAD_SIZE
    if name_start > end:
        raise DecodeError(f"invalid CallReducer: input ends early at offset {pos}")
    request_id = _u32_at(frame, pos + 1)
    flags = frame[pos + 5]
    args_at = name_start + _u32_at(frame, pos + 6)
    if args_at + 4 > end:
        raise DecodeError(
            f"invalid CallReducer: needed {args_at - name_start + 4} byte(s) at offset {name_start}"
        )
    reducer = _reducer_name(frame[name_start:args_at])
    args_length = _u32_at(frame, args_at)
    args_end = args_at + 4 + args_length
    if args_end > end:
        raise DecodeError(f"invalid CallReducer: needed {args_length} byte(s) at offset {args_at + 4}")
    return request_id, flags, reducer, frame[args_at + 4 : args_end], args_end


def _u32_at(data: bytes, pos: int) -> int:
    """The little-endian u32 at ``pos`` (the caller checked that its 4 bytes are there)."""
    return data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16 | data[pos + 3] << 24


# the names clients call, decoded once (a few per module); bounded in count and length, so that a client sending
# ever new or huge names costs the worker at most about 100 KiB here
_REDUCER_NAMES: dict[bytes, str] = {}
_MAX_REDUCER_NAMES: Final = 1024
_MAX_CACHED_NAME_BYTES: Final = 64


def _reducer_name(encoded: bytes) -> str:
    name = _REDUCER_NAMES.get(encoded)
    if name is None:
        try:
            name = encoded.decode()
        except UnicodeDecodeError:
            raise DecodeError("invalid CallReducer: the reducer name is not valid UTF-8") from None
        if len(encoded) <= _MAX_CACHED_NAME_BYTES and len(_REDUCER_NAMES) < _MAX_REDUCER_NAMES:
            _REDUCER_NAMES[encoded] = name
    return name


def _client_frame(data: bytes | bytearray | memoryview) -> bytes:
    """A client frame as ``bytes`` (compiled, slicing those is a direct call); an empty one is an error."""
    if not len(data):
        raise DecodeError("empty client frame")
    return data if isinstance(data, bytes) else bytes(data)


def decode_client_messages(data: bytes | bytearray | memoryview, batched: bool) -> list[ClientMessage]:
    """Decode a client frame: exactly one message (v2) or one or more concatenated ones (v3)."""
    frame = _client_frame(data)
    decode_from = _client_codec.decode_from
    out: list[ClientMessage] = []
    pos = 0
    end = len(frame)
    while pos < end:
        if frame[pos] == CALL_REDUCER:
            message, pos = _decode_call_reducer(frame, pos, end)
            out.append(message)
        else:
            decoded, pos = decode_from(frame, pos)
            out.append(ClientMessage(decoded.tag, decoded.value))
        if not batched:
            break
    if pos != end:
        raise DecodeError(f"{end - pos} trailing byte(s) after a client message")
    return out


def encode_client_message(tag: int, *fields: Any) -> bytes:
    return _client_codec.encode(SumValue(tag, fields))


def decode_server_messages(body: bytes | bytearray | memoryview) -> list[SumValue]:
    """Decode the (decompressed) body of a server frame into one or more messages."""
    out = []
    pos = 0
    while pos < len(body):
        message, pos = _server_codec.decode_from(body, pos)
        out.append(message)
    return out


def encode_server_message(tag: int, *fields: Any) -> bytes:
    """Generic (slower) encoding of any server message from canonical SATS values."""
    return _server_codec.encode(SumValue(tag, fields))


# ---- fast encoders for the messages sent on every transaction ------------------------------------------------


def encode_row_list(rows: Sequence[bytes]) -> bytes:
    """A BsatnRowList: a size hint (fixed row size when every row has the same non-zero size below 64 KiB,
    else every row's start offset) and the concatenated rows."""
    data = b"".join(rows)
    count = len(rows)
    if count:
        size = len(rows[0])
        if 0 < size <= 0xFFFF and size * count == len(data) and all(len(r) == size for r in rows):
            return b"\x00" + _U16.pack(size) + _pack_u32(len(data)) + data
    offsets = []
    position = 0
    for row in rows:
        offsets.append(position)
        position += len(row)
    return b"\x01" + struct.pack(f"<I{count}Q", count, *offsets) + _pack_u32(len(data)) + data


def decode_row_list(value: tuple[Any, Any]) -> list[bytes]:
    """Split a decoded BsatnRowList (size_hint, rows_data) into its rows."""
    hint, data = value
    if hint.tag == 0:
        size = hint.value
        if size == 0:
            if data:
                raise DecodeError("a fixed row size of 0 with non-empty row data")
            return []
        if len(data) % size:
            raise DecodeError(f"row data of {len(data)} bytes is not a multiple of the fixed row size {size}")
        return [bytes(data[i : i + size]) for i in range(0, len(data), size)]
    offsets = list(hint.value)
    rows = []
    for i, start in enumerate(offsets):
        end = offsets[i + 1] if i + 1 < len(offsets) else len(data)
        if not start <= end <= len(data):
            raise DecodeError("row offsets out of order or beyond the row data")
        rows.append(bytes(data[start:end]))
    return rows


def _str(text: str) -> bytes:
    data = text.encode("utf-8")
    return _pack_u32(len(data)) + data


@dataclass(frozen=True, slots=True)
class TableUpdateRows:
    """Rows of one table within a query set's update; row lists are BSATN row bytes."""

    table_name: str
    inserts: Sequence[bytes]
    deletes: Sequence[bytes] = ()


def encode_query_rows(tables: Iterable[tuple[str, Sequence[bytes]]]) -> bytes:
    """QueryRows: for each table its name and a row list."""
    parts = [b""]
    count = 0
    for name, rows in tables:
        parts.append(_str(name))
        parts.append(encode_row_list(rows))
        count += 1
    parts[0] = _pack_u32(count)
    return b"".join(parts)


def encode_query_set_update(query_set_id: int, tables: Sequence[TableUpdateRows]) -> bytes:
    parts = [_pack_u32(query_set_id), _pack_u32(len(tables))]
    for table in tables:
        parts.append(_str(table.table_name))
        parts.append(b"\x01\x00\x00\x00\x00")  # one TableUpdateRows entry, tag PersistentTable
        parts.append(encode_row_list(table.inserts))
        parts.append(encode_row_list(table.deletes))
    return b"".join(parts)


def encode_transaction_update_body(query_set_updates: Sequence[bytes]) -> bytes:
    """The TransactionUpdate struct from already encoded QuerySetUpdates."""
    return _pack_u32(len(query_set_updates)) + b"".join(query_set_updates)


def transaction_update_message(query_set_updates: Sequence[bytes]) -> bytes:
    return _TAG[TRANSACTION_UPDATE_TAG] + encode_transaction_update_body(query_set_updates)


# tag, request id, timestamp, Ok, empty ret_value, no query sets (bound once: compiled, ``a_struct.pack(...)``
# looks ``pack`` up by name at every call)
_pack_ok_empty: Final = struct.Struct("<BIqBII").pack


def reducer_result_ok(request_id: int, timestamp: Timestamp, query_set_updates: Sequence[bytes]) -> bytes:
    if not query_set_updates:
        return _pack_ok_empty(REDUCER_RESULT, request_id, timestamp.micros, OUTCOME_OK, 0, 0)
    return (
        _TAG[REDUCER_RESULT]
        + _pack_u32(request_id)
        + _I64.pack(timestamp.micros)
        + _TAG[OUTCOME_OK]
        + b"\x00\x00\x00\x00"  # empty ret_value
        + encode_transaction_update_body(query_set_updates)
    )


def reducer_result_err(request_id: int, timestamp: Timestamp, message: str) -> bytes:
    """A reducer that failed with a user error: ``Err`` carrying the BSATN of the error string."""
    payload = _str(message)
    return (
        _TAG[REDUCER_RESULT]
        + _pack_u32(request_id)
        + _I64.pack(timestamp.micros)
        + _TAG[OUTCOME_ERR]
        + _pack_u32(len(payload))
        + payload
    )


def reducer_result_internal_error(request_id: int, timestamp: Timestamp, message: str) -> bytes:
    return (
        _TAG[REDUCER_RESULT]
        + _pack_u32(request_id)
        + _I64.pack(timestamp.micros)
        + _TAG[OUTCOME_INTERNAL_ERROR]
        + _str(message)
    )


def initial_connection(identity: Identity, connection_id: ConnectionId, token: str) -> bytes:
    return _TAG[INITIAL_CONNECTION] + identity.to_le_bytes() + connection_id.to_le_bytes() + _str(token)


def subscribe_applied(
    request_id: int, query_set_id: int, tables: Iterable[tuple[str, Sequence[bytes]]]
) -> bytes:
    return (
        _TAG[SUBSCRIBE_APPLIED] + _pack_u32(request_id) + _pack_u32(query_set_id) + encode_query_rows(tables)
    )


def unsubscribe_applied(
    request_id: int, query_set_id: int, tables: Iterable[tuple[str, Sequence[bytes]]] | None
) -> bytes:
    rows = b"\x01" if tables is None else b"\x00" + encode_query_rows(tables)
    return _TAG[UNSUBSCRIBE_APPLIED] + _pack_u32(request_id) + _pack_u32(query_set_id) + rows


def subscription_error(request_id: int | None, query_set_id: int, error: str) -> bytes:
    request = b"\x01" if request_id is None else b"\x00" + _pack_u32(request_id)
    return _TAG[SUBSCRIPTION_ERROR] + request + _pack_u32(query_set_id) + _str(error)


def one_off_query_result(
    request_id: int, tables: Iterable[tuple[str, Sequence[bytes]]] | None, error: str | None = None
) -> bytes:
    body = b"\x01" + _str(error or "") if tables is None else b"\x00" + encode_query_rows(tables)
    return _TAG[ONE_OFF_QUERY_RESULT] + _pack_u32(request_id) + body


def procedure_internal_error(request_id: int, timestamp: Timestamp, message: str, micros: int = 0) -> bytes:
    return _procedure_result(b"\x01" + _str(message), request_id, timestamp, micros)


def procedure_returned(request_id: int, timestamp: Timestamp, value: bytes, micros: int = 0) -> bytes:
    """``value``: the BSATN of the procedure's return value."""
    return _procedure_result(b"\x00" + _pack_u32(len(value)) + value, request_id, timestamp, micros)


def _procedure_result(status: bytes, request_id: int, timestamp: Timestamp, micros: int) -> bytes:
    return (
        _TAG[PROCEDURE_RESULT]
        + status
        + _I64.pack(timestamp.micros)
        + _I64.pack(micros)
        + _pack_u32(request_id)
    )


# ---- frames ------------------------------------------------------------------------------------------------


def server_frame(messages: Sequence[bytes], compression: int = COMPRESSION_NONE) -> bytes:
    """A server frame: compression tag + body. Several messages only make sense in v3."""
    body = messages[0] if len(messages) == 1 else b"".join(messages)
    if compression == COMPRESSION_GZIP and len(body) > COMPRESS_THRESHOLD:
        return b"\x02" + gzip.compress(body, compresslevel=1)
    return b"\x00" + body


def split_server_frame(frame: bytes | bytearray | memoryview) -> bytes:
    """The (decompressed) body of a server frame."""
    if not len(frame):
        raise DecodeError("empty server frame")
    tag = frame[0]
    body = bytes(frame[1:])
    if tag == COMPRESSION_NONE:
        return body
    if tag == COMPRESSION_GZIP:
        try:
            return gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise DecodeError(f"invalid gzip body: {exc}") from None
    if tag == COMPRESSION_BROTLI:
        raise DecodeError("brotli-compressed frames are not supported by this client; ask for gzip or none")
    raise DecodeError(f"unknown compression tag {tag}")


# ---- typed messages and the server-side encoder ------------------------------------------------------------------


def decode_frame(data: bytes | bytearray | memoryview, batched: bool) -> list[messages.ClientMessage]:
    """A client frame as typed messages (raises ``DecodeError`` naming what is wrong). CallReducer, sent most
    by far, is decoded by hand straight into its typed message."""
    frame = _client_frame(data)
    out: list[messages.ClientMessage] = []
    pos = 0
    end = len(frame)
    while pos < end:
        if frame[pos] == CALL_REDUCER:
            request_id, flags, reducer, args, pos = _call_reducer_fields(frame, pos, end)
            if flags != 0:
                raise DecodeError(f"invalid call reducer flags {flags}")
            out.append(_call_reducer_message(request_id, reducer, args))
        else:
            decoded, pos = _decode_client_message(frame, pos)
            out.append(_typed(ClientMessage(decoded.tag, decoded.value)))
        if not batched:
            break
    if pos != end:
        raise DecodeError(f"{end - pos} trailing byte(s) after a client message")
    return out


def decode_v2_frame(data: bytes) -> list[messages.ClientMessage]:
    """``decode_frame`` of v2: one message per frame."""
    return decode_frame(data, False)


def decode_v3_frame(data: bytes) -> list[messages.ClientMessage]:
    """``decode_frame`` of v3: one or more concatenated messages per frame."""
    return decode_frame(data, True)


def _call_reducer_message(request_id: int, reducer: str, args: bytes) -> messages.CallReducer:
    # the tuple built directly: a NamedTuple's own constructor is generated code that runs interpreted even
    # when called from compiled code, once per call
    return tuple.__new__(_CALL_REDUCER_MESSAGE, (request_id, reducer, args, False))


_CLIENT_MESSAGE_NAMES = tuple(variant.name for variant in CLIENT_MESSAGE.variants)


def _decode_client_message(frame: bytes | bytearray | memoryview, pos: int) -> tuple[SumValue, int]:
    """The message at ``pos``, or a ``DecodeError`` that names it first (a close reason keeps only the
    start of the error)."""
    tag = frame[pos]
    if tag >= len(_CLIENT_MESSAGE_NAMES):
        raise DecodeError(f"unknown client message tag {tag} at offset {pos}")
    try:
        return _client_codec.decode_from(frame, pos)
    except DecodeError as exc:
        raise DecodeError(f"invalid {_CLIENT_MESSAGE_NAMES[tag]} at offset {pos}: {exc}") from None


def _typed(message: ClientMessage) -> messages.ClientMessage:
    fields = message.fields
    match message.tag:
        case 3:  # CALL_REDUCER
            request_id, flags, reducer, args = fields
            if flags != 0:
                raise DecodeError(f"invalid call reducer flags {flags}")
            return messages.CallReducer(request_id, reducer, args)
        case 0:  # SUBSCRIBE
            request_id, (query_set_id,), queries = fields
            return messages.Subscribe(request_id, query_set_id, tuple(queries))
        case 1:  # UNSUBSCRIBE
            request_id, (query_set_id,), flags = fields
            return messages.Unsubscribe(request_id, query_set_id, flags == UNSUBSCRIBE_SEND_DROPPED_ROWS)
        case 2:  # ONE_OFF_QUERY
            request_id, query = fields
            return messages.OneOffQuery(request_id, query)
        case _:  # CALL_PROCEDURE
            request_id, flags, procedure, args = fields
            return messages.CallProcedure(request_id, procedure, args)


def table_update(delta: messages.RowDelta) -> bytes:
    """One TableUpdate of a query's delta, encoded once and shared by every subscriber."""
    cached = delta.cache.get("v2")
    if cached is None:
        if delta.is_event:
            rows = b"\x01" + encode_row_list(delta.inserts)  # EventTable{events}
        else:
            rows = (
                b"\x00" + encode_row_list(delta.inserts) + encode_row_list(delta.deletes)
            )  # PersistentTable
        cached = delta.cache["v2"] = _str(delta.table_name) + b"\x01\x00\x00\x00" + rows  # one rows entry
    return cached


def query_set_updates(updates: Iterable[tuple[int, messages.RowDelta]]) -> list[bytes]:
    """Group a client's (query set, delta) pairs into encoded QuerySetUpdates."""
    by_set: dict[int, list[bytes]] = {}
    for query_set_id, delta in updates:
        by_set.setdefault(query_set_id, []).append(table_update(delta))
    return [
        _pack_u32(query_set_id) + _pack_u32(len(tables)) + b"".join(tables)
        for query_set_id, tables in by_set.items()
    ]


def _table_pairs(
    tables: Sequence[messages.TableRowsLike] | None,
) -> list[tuple[str, Sequence[bytes]]] | None:
    return None if tables is None else [(t.table_name, t.rows) for t in tables]


class V2Encoder:
    """Server messages of ``v2.bsatn.spacetimedb`` and ``v3.bsatn.spacetimedb`` (v3 batches them in frames)."""

    binary = True

    def __init__(self, batched: bool) -> None:
        self.batched = batched
        self.name = PROTOCOL_V3 if batched else PROTOCOL_V2

    def initial_connection(self, identity: Identity, connection_id: ConnectionId, token: str) -> bytes:
        return initial_connection(identity, connection_id, token)

    def reducer_result(
        self,
        request_id: int,
        reducer: str,
        args: Any,
        outcome: messages.ReducerOutcome,
        caller: messages.Caller,
    ) -> bytes:
        # (module-level names: an enum member read through its class is slow, and this runs per call)
        if outcome.status is _COMMITTED:
            updates = outcome.caller_updates
            return reducer_result_ok(
                request_id, outcome.timestamp, query_set_updates(updates) if updates else ()
            )
        if outcome.status is _FAILED:
            return reducer_result_err(request_id, outcome.timestamp, outcome.message or "")
        return reducer_result_internal_error(request_id, outcome.timestamp, outcome.message or outcome.status)

    def transaction_update(self, updates: Sequence[tuple[int, messages.RowDelta]]) -> bytes:
        return transaction_update_message(query_set_updates(updates))

    def subscription_error(self, request_id: int | None, query_set_id: int, message: str) -> bytes:
        return subscription_error(request_id, query_set_id, message)

    def subscribe_applied(
        self, request_id: int, query_set_id: int, tables: Sequence[messages.TableRowsLike], multi: bool
    ) -> bytes:
        return subscribe_applied(request_id, query_set_id, _table_pairs(tables) or [])

    def unsubscribe_applied(
        self, request_id: int, query_set_id: int, tables: Sequence[messages.TableRowsLike] | None
    ) -> bytes:
        return unsubscribe_applied(request_id, query_set_id, _table_pairs(tables))

    def one_off_result(
        self, request_id: Any, tables: Sequence[messages.TableRowsLike] | None, error: str | None
    ) -> bytes:
        return one_off_query_result(request_id, _table_pairs(tables), error)

    def procedure_error(self, request_id: int, message: str) -> bytes:
        return procedure_internal_error(request_id, Timestamp.now(), message)

    def procedure_result(self, request_id: int, outcome: messages.ProcedureOutcomeLike) -> bytes:
        if outcome.status == messages.CallStatus.COMMITTED:
            return procedure_returned(
                request_id, outcome.timestamp, outcome.value_bsatn(), outcome.duration_micros
            )
        return procedure_internal_error(
            request_id, outcome.timestamp, outcome.message or outcome.status, outcome.duration_micros
        )
