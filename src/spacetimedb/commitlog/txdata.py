"""The transaction record: what one committed transaction writes into the log (see docs/commitlog-format.md).

Rows are opaque, length-prefixed byte strings (the BSATN encoding of the row, produced and interpreted by
the layers above), so the log can be read, checked and copied without knowing any schema.

`encode_tx_record` runs on every reducer commit and is written for speed: it takes the parts directly,
builds one list of byte strings and joins it once. `decode_tx_record` is strict: anything malformed,
including non-canonical encodings and trailing bytes, raises `CommitlogDecodeError` and nothing else,
and no count read from the input is trusted to size an allocation.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from .errors import CommitlogDecodeError

# for isinstance: a tuple, not ``bytes | bytearray | memoryview``, whose union object costs several times more
BYTES_LIKE: Final = (bytes, bytearray, memoryview)

FLAG_INPUTS: Final = 0x80
FLAG_OUTPUTS: Final = 0x40
FLAG_MUTATIONS: Final = 0x20
_KNOWN_FLAGS = FLAG_INPUTS | FLAG_OUTPUTS | FLAG_MUTATIONS

IDENTITY_LEN: Final = 32
CONNECTION_ID_LEN: Final = 16
_MAX_U64: Final = (1 << 64) - 1

_U32: Final = struct.Struct("<I")
_I64: Final = struct.Struct("<q")
_pack_u32: Final = _U32.pack
# Final: compiled, a constant of the module itself rather than a lookup in its namespace at every use
_BYTE: Final = tuple(bytes((i,)) for i in range(256))

# a table id and the BSATN of some of its rows: one group of a record's inserts or deletes
TableRowGroup = tuple[int, list[bytes]]


@dataclass(slots=True, init=False)
class TxInputs:
    """What produced the transaction: the reducer call."""

    reducer_name: str
    caller_identity: bytes  # 32 bytes
    caller_connection_id: bytes  # 16 bytes
    timestamp_us: int  # microseconds since the Unix epoch (i64)
    args: bytes  # the reducer's BSATN-encoded argument tuple

    # (not a NamedTuple, and an ``__init__`` of its own: mypyc compiles this one, while a NamedTuple's
    # constructor or a dataclass-generated ``__init__`` runs interpreted, once per transaction)
    def __init__(
        self,
        reducer_name: str,
        caller_identity: bytes,
        caller_connection_id: bytes,
        timestamp_us: int,
        args: bytes,
    ) -> None:
        self.reducer_name = reducer_name
        self.caller_identity = caller_identity
        self.caller_connection_id = caller_connection_id
        self.timestamp_us = timestamp_us
        self.args = args


@dataclass(slots=True)
class TxRecord:
    """A decoded transaction record. Table ids are u32; rows are the encoded rows, in log order."""

    inputs: TxInputs | None = None
    outputs: str | None = None
    inserts: list[TableRowGroup] = field(default_factory=list)
    deletes: list[TableRowGroup] = field(default_factory=list)
    truncates: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        return encode_tx_record(self.inputs, self.outputs, self.inserts, self.deletes, self.truncates)


# ---------------------------------------------------------------------------------------------------
# Encoding


def encode_uvarint(value: int) -> bytes:
    """LEB128: 7 bits per byte, least significant group first, high bit set on all but the last byte."""
    if 0 <= value < 0x80:
        return _BYTE[value]
    if value < 0 or value > _MAX_U64:
        raise ValueError(f"{value} does not fit an unsigned 64-bit varint")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_tx_record(
    inputs: TxInputs | None,
    outputs: str | None,
    inserts: Sequence[tuple[int, Sequence[bytes]]],
    deletes: Sequence[tuple[int, Sequence[bytes]]],
    truncates: Sequence[int] = (),
) -> bytes:
    """Encode one transaction record from its parts (`inserts`/`deletes`: (table id, rows) groups)."""
    parts: list[bytes] = [b""]  # the flags byte goes here once known
    flags = 0
    try:
        if inputs is not None:
            flags = FLAG_INPUTS
            _append_inputs(parts, inputs)
        if outputs is not None:
            flags |= FLAG_OUTPUTS
            text = outputs.encode()
            parts.append(encode_uvarint(len(text)))
            parts.append(text)
        if inserts or deletes or truncates:
            flags |= FLAG_MUTATIONS
            _append_groups(parts, inserts)
            _append_groups(parts, deletes)
            parts.append(encode_uvarint(len(truncates)))
            parts.extend(map(_pack_u32, truncates))
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"cannot encode transaction record: {exc}") from None
    parts[0] = _BYTE[flags]
    return b"".join(parts)


class ChangedTable(Protocol):
    """What a commit changed in one table, as ``encode_commit_record`` reads it (the datastore's
    ``TableChanges``). Read-only properties, so that a class holding lists satisfies it."""

    @property
    def table_id(self) -> int: ...

    @property
    def insert_bytes(self) -> Sequence[bytes]: ...

    @property
    def delete_bytes(self) -> Sequence[bytes]: ...


def encode_commit_record(inputs: TxInputs | None, tables: Sequence[ChangedTable]) -> bytes:
    """``encode_tx_record`` of a commit's changed tables (no outputs, no truncations), without building the
    (table id, rows) groups first: this runs once per reducer call, so everything goes into one list, joined
    once, and each table's attributes are read once (compiled, reading them through the protocol type is a
    generic attribute lookup)."""
    parts: list[bytes] = [b""]  # the flags byte goes here once known
    try:
        if inputs is not None:
            _append_inputs(parts, inputs)
        count_at = len(parts)
        parts.append(b"")  # how many insert groups, once known
        inserted = 0
        deletes: list[tuple[int, Sequence[bytes]]] = []
        for table in tables:
            table_id = table.table_id
            rows = table.insert_bytes
            if rows:
                inserted += 1
                _frame_rows(parts, table_id, rows)
            rows = table.delete_bytes
            if rows:
                deletes.append((table_id, rows))
        if inserted or deletes:
            parts[count_at] = encode_uvarint(inserted)
            parts.append(encode_uvarint(len(deletes)))
            for table_id, rows in deletes:
                _frame_rows(parts, table_id, rows)
            parts.append(b"\x00")  # no truncations
            flags = FLAG_MUTATIONS
        else:
            del parts[count_at:]
            flags = 0
    except OverflowError as exc:  # a table id beyond u32, a timestamp beyond i64
        raise ValueError(f"cannot encode transaction record: {exc}") from None
    parts[0] = _BYTE[flags if inputs is None else FLAG_INPUTS | flags]
    return b"".join(parts)


def _frame_rows(out: list[bytes], table_id: int, rows: Sequence[bytes]) -> None:
    """One (table id, rows) group of a record: the id, the row count, each row with its length before it."""
    out.append(table_id.to_bytes(4, "little"))
    out.append(encode_uvarint(len(rows)))
    for row in rows:
        out.append(encode_uvarint(len(row)))
        out.append(row)


def _append_inputs(parts: list[bytes], inputs: TxInputs) -> None:
    name, identity, connection_id = inputs.reducer_name, inputs.caller_identity, inputs.caller_connection_id
    args = inputs.args
    if len(identity) != IDENTITY_LEN:
        raise ValueError(f"caller_identity must be {IDENTITY_LEN} bytes, got {len(identity)}")
    if len(connection_id) != CONNECTION_ID_LEN:
        raise ValueError(f"caller_connection_id must be {CONNECTION_ID_LEN} bytes, got {len(connection_id)}")
    name_bytes = name.encode()
    parts.append(encode_uvarint(len(name_bytes)))
    parts.append(name_bytes)
    parts.append(identity)
    parts.append(connection_id)
    parts.append(inputs.timestamp_us.to_bytes(8, "little", signed=True))
    parts.append(encode_uvarint(len(args)))
    parts.append(args)


def _append_groups(parts: list[bytes], groups: Sequence[tuple[int, Sequence[bytes]]]) -> None:
    parts.append(encode_uvarint(len(groups)))
    for table_id, rows in groups:
        _frame_rows(parts, table_id, rows)


# ---------------------------------------------------------------------------------------------------
# Decoding


def decode_tx_record(buf: bytes | bytearray | memoryview) -> TxRecord:
    """Decode a record produced by `encode_tx_record`; CommitlogDecodeError if it is not exactly one."""
    if not isinstance(buf, BYTES_LIKE):
        raise TypeError(f"decode_tx_record needs a bytes-like object, got {type(buf).__name__}")
    data = buf if type(buf) is bytes else bytes(buf)
    try:
        return _decode(data)
    except CommitlogDecodeError:
        raise
    except (IndexError, struct.error) as exc:
        raise CommitlogDecodeError(f"truncated transaction record ({len(data)} bytes): {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CommitlogDecodeError(f"invalid UTF-8 in transaction record: {exc}") from exc


def _decode(data: bytes) -> TxRecord:
    size = len(data)
    if not size:
        raise CommitlogDecodeError("empty transaction record")
    flags = data[0]
    if flags & ~_KNOWN_FLAGS:
        raise CommitlogDecodeError(f"unknown flag bits in transaction record: {flags:#04x}")
    record = TxRecord()
    pos = 1
    if flags & FLAG_INPUTS:
        record.inputs, pos = _read_inputs(data, pos)
    if flags & FLAG_OUTPUTS:
        text, pos = _read_bytes(data, pos, "outputs")
        record.outputs = text.decode()
    if flags & FLAG_MUTATIONS:
        record.inserts, pos = _read_groups(data, pos)
        record.deletes, pos = _read_groups(data, pos)
        record.truncates, pos = _read_truncates(data, pos)
        if not (record.inserts or record.deletes or record.truncates):
            raise CommitlogDecodeError("mutations flag set but the record has no mutations")
    if pos != size:
        raise CommitlogDecodeError(f"{size - pos} trailing bytes after the transaction record")
    return record


def decode_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a canonical (shortest-form) LEB128 u64 at `pos`; return (value, position after it)."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise CommitlogDecodeError("varint longer than 10 bytes")
    if byte == 0:
        raise CommitlogDecodeError("varint is not in shortest form")
    if value > _MAX_U64:
        raise CommitlogDecodeError("varint exceeds 64 bits")
    return value, pos


def _read_bytes(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length, pos = decode_uvarint(data, pos)
    end = pos + length
    if end > len(data):
        raise CommitlogDecodeError(f"{what} of {length} bytes runs past the end of the record")
    return data[pos:end], end


def _read_inputs(data: bytes, pos: int) -> tuple[TxInputs, int]:
    name, pos = _read_bytes(data, pos, "reducer name")
    fixed_end = pos + IDENTITY_LEN + CONNECTION_ID_LEN + 8
    if fixed_end > len(data):
        raise CommitlogDecodeError("reducer inputs truncated")
    identity = data[pos : pos + IDENTITY_LEN]
    connection_id = data[pos + IDENTITY_LEN : pos + IDENTITY_LEN + CONNECTION_ID_LEN]
    (timestamp_us,) = _I64.unpack_from(data, fixed_end - 8)
    args, pos = _read_bytes(data, fixed_end, "reducer arguments")
    return TxInputs(name.decode(), identity, connection_id, timestamp_us, args), pos


def _read_groups(data: bytes, pos: int) -> tuple[list[TableRowGroup], int]:
    size = len(data)
    count, pos = decode_uvarint(data, pos)
    if count * 5 > size - pos:  # a group takes at least a u32 table id and a one-byte row count
        raise CommitlogDecodeError(f"{count} table groups cannot fit in the remaining {size - pos} bytes")
    unpack_u32 = _U32.unpack_from
    groups: list[TableRowGroup] = []
    for _ in range(count):
        (table_id,) = unpack_u32(data, pos)
        row_count, pos = decode_uvarint(data, pos + 4)
        if row_count > size - pos:  # a row takes at least its one-byte length
            raise CommitlogDecodeError(f"{row_count} rows cannot fit in the remaining {size - pos} bytes")
        rows = []
        for _ in range(row_count):
            length = data[pos]
            if length < 0x80:
                pos += 1
            else:
                length, pos = decode_uvarint(data, pos)
            end = pos + length
            if end > size:
                raise CommitlogDecodeError(f"row of {length} bytes runs past the end of the record")
            rows.append(data[pos:end])
            pos = end
        groups.append((table_id, rows))
    return groups, pos


def _read_truncates(data: bytes, pos: int) -> tuple[list[int], int]:
    count, pos = decode_uvarint(data, pos)
    if count * 4 > len(data) - pos:
        raise CommitlogDecodeError(f"{count} truncated tables cannot fit in the remaining bytes")
    table_ids = [table_id for (table_id,) in _U32.iter_unpack(data[pos : pos + 4 * count])]
    return table_ids, pos + 4 * count
