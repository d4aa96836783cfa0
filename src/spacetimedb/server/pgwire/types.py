"""SATS types as PostgreSQL types: each column's type OID, its values in text and binary format, and parameter values
from the wire turned into the literals the SQL layer types against their columns.

The mapping is upstream's: integers to int2/int4/int8/numeric by width, floats to float4/float8, bool, text,
bytea for identities, connection ids and byte arrays, timestamptz for timestamps, interval for durations, uuid
for uuids, plain enums as text, and json for every other product, sum and array.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from spacetimedb.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    ScheduleAt,
    Some,
    SumType,
    SumValue,
    Timestamp,
    Uuid,
    special_kind,
)
from spacetimedb.sats.types import U8

# type OIDs (pg_type.oid): what drivers decode by
BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON, FLOAT4, FLOAT8 = 16, 17, 20, 21, 23, 25, 114, 700, 701
UNKNOWN, VARCHAR, TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID = 705, 1043, 1114, 1184, 1186, 1700, 2950

# the size pg_type.typlen gives each fixed-size type (-1: variable), for RowDescription
TYPE_SIZES = {
    BOOL: 1,
    INT2: 2,
    INT4: 4,
    INT8: 8,
    FLOAT4: 4,
    FLOAT8: 8,
    TIMESTAMPTZ: 8,
    INTERVAL: 16,
    UUID: 16,
}

_PG_EPOCH_MICROS = 946_684_800_000_000  # 2000-01-01 (PostgreSQL's epoch) in Unix microseconds
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_F32 = struct.Struct("<f")
_INT_OIDS = {"U8": INT2, "I8": INT2, "I16": INT2, "U16": INT4, "I32": INT4, "U32": INT8, "I64": INT8}


class ParamError(ValueError):
    """A parameter value that cannot be read in the format and type it was sent as."""


def type_oid(ty: AlgebraicType) -> int:
    """The PostgreSQL type a column of ``ty`` is shown as."""
    if isinstance(ty, PrimitiveType):
        kind = ty.kind
        if kind == "Bool":
            return BOOL
        if kind == "String":
            return TEXT
        if kind == "F32":
            return FLOAT4
        if kind == "F64":
            return FLOAT8
        return _INT_OIDS.get(kind, NUMERIC)
    special = special_kind(ty)
    if special in ("identity", "connection_id") or ty == ArrayType(U8):
        return BYTEA
    if special == "timestamp":
        return TIMESTAMPTZ
    if special == "time_duration":
        return INTERVAL
    if special == "uuid":
        return UUID
    if isinstance(ty, SumType) and special is None and ty.is_simple_enum():
        return TEXT
    return JSON


# ---- values out ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """How one result column goes on the wire: its name, type OID and its encoder for the format asked."""

    name: str
    oid: int
    encode: Callable[[Any], bytes]


def columns_of(schema: ProductType, binary: Callable[[int], bool]) -> list[Column]:
    """The columns of ``schema``; ``binary(i)``: whether column ``i`` is sent in binary format."""
    columns = []
    for i, element in enumerate(schema.elements):
        oid = type_oid(element.type)
        encode = binary_encoder(element.type, oid) if binary(i) else text_encoder(element.type, oid)
        columns.append(Column(element.name if element.name is not None else f"col_{i}", oid, encode))
    return columns


def text_encoder(ty: AlgebraicType, oid: int) -> Callable[[Any], bytes]:
    """Values of ``ty`` in PostgreSQL's text format for ``oid``."""
    if oid == BOOL:
        return lambda v: b"t" if v else b"f"
    if oid in (FLOAT4, FLOAT8):
        single = oid == FLOAT4
        return lambda v: _float_text(v, single).encode()
    if oid in (INT2, INT4, INT8, NUMERIC):
        return lambda v: str(v).encode()
    if oid == TEXT and isinstance(ty, PrimitiveType):
        return lambda v: v.encode("utf-8", "surrogateescape")
    if oid == TEXT:  # a plain enum: the variant's name
        assert isinstance(ty, SumType)
        names = [variant.name or str(tag) for tag, variant in enumerate(ty.variants)]
        return lambda v: names[v.tag].encode()
    if oid == BYTEA:
        to_bytes = _bytes_of(ty)
        return lambda v: b"\\x" + to_bytes(v).hex().encode()
    if oid == TIMESTAMPTZ:
        return lambda v: _timestamp_text(v).encode()
    if oid == INTERVAL:
        return lambda v: _interval_text(v.micros).encode()
    if oid == UUID:
        return lambda v: _uuid_text(v).encode()
    return lambda v: json.dumps(json_value(ty, v), ensure_ascii=False).encode()


def binary_encoder(ty: AlgebraicType, oid: int) -> Callable[[Any], bytes]:
    """Values of ``ty`` in PostgreSQL's binary format for ``oid``."""
    fixed = {BOOL: "?", INT2: ">h", INT4: ">i", INT8: ">q", FLOAT4: ">f", FLOAT8: ">d"}
    if oid in fixed:
        return struct.Struct(fixed[oid]).pack
    if oid == NUMERIC:
        return lambda v: numeric_binary(Decimal(v))
    if oid == BYTEA:
        return _bytes_of(ty)
    if oid == TIMESTAMPTZ:
        return lambda v: struct.pack(">q", v.micros - _PG_EPOCH_MICROS)
    if oid == INTERVAL:
        return lambda v: struct.pack(">qii", v.micros, 0, 0)
    if oid == UUID:
        return lambda v: v.to_be_bytes()
    return text_encoder(ty, oid)  # text, enums and json: the binary form is the text


def _bytes_of(ty: AlgebraicType) -> Callable[[Any], bytes]:
    if ty == ArrayType(U8):
        return bytes
    return lambda v: v.to_be_bytes()  # identities and connection ids, in their usual (big-endian hex) order


def _float_text(value: float, single: bool) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if not single:
        return repr(value)  # the shortest text that reads back the same, as PostgreSQL 12+ prints a float8
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if _reads_back_as_f32(text, value):
            return text
    return repr(value)


def _reads_back_as_f32(text: str, value: float) -> bool:
    try:
        return _F32.pack(float(text)) == _F32.pack(value)
    except OverflowError:  # rounded past the largest f32
        return False


def _timestamp_text(value: Timestamp) -> str:
    """PostgreSQL's ISO output of a timestamptz in UTC: ``2024-05-01 12:00:00.5+00``."""
    try:
        moment = _EPOCH + dt.timedelta(microseconds=value.micros)
    except OverflowError:  # beyond year 9999, where PostgreSQL cannot go either
        return "infinity" if value.micros > 0 else "-infinity"
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.year < 1000:
        text = f"{moment.year:04d}" + text[text.index("-") :]
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "+00"


def _uuid_text(value: Uuid) -> str:
    h = value.to_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _interval_text(micros: int) -> str:
    """ISO 8601-ish ``HH:MM:SS.ffffff`` with days, as PostgreSQL's ``postgres`` style prints an interval."""
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{mins:02d}:{secs:02d}"
    return text + (f".{fraction:06d}" if fraction else "")


def numeric_binary(number: Decimal) -> bytes:
    """A finite integer or decimal in PostgreSQL's binary numeric format (base-10000 digits)."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    text = "".join(map(str, digits))
    if exponent > 0:
        text += "0" * exponent
        exponent = 0
    whole, fraction = (text[: len(text) + exponent], text[len(text) + exponent :]) if exponent else (text, "")
    whole = whole.lstrip("0")
    whole = "0" * (-len(whole) % 4) + whole
    fraction = fraction + "0" * (-len(fraction) % 4)
    groups = [int(whole[i : i + 4]) for i in range(0, len(whole), 4)]
    weight = len(groups) - 1
    groups += [int(fraction[i : i + 4]) for i in range(0, len(fraction), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    head = struct.pack(">hhHH", len(groups), weight, 0x4000 if sign else 0, scale)
    return head + struct.pack(f">{len(groups)}H", *groups)


def json_value(ty: AlgebraicType, value: Any) -> Any:
    """A SATS value as JSON: records as objects, sums as ``{"variant": payload}``, special values as text."""
    kind = special_kind(ty)
    if isinstance(ty, PrimitiveType):
        if ty.is_float and not math.isfinite(value):
            return _float_text(value, False)
        return value
    if kind in ("identity", "connection_id"):
        return "0x" + value.to_hex()
    if kind == "timestamp":
        return _timestamp_text(value)
    if kind == "time_duration":
        return _interval_text(value.micros)
    if kind == "uuid":
        return _uuid_text(value)
    if isinstance(ty, ArrayType):
        if ty.elem == U8:
            return "0x" + bytes(value).hex()
        return [json_value(ty.elem, item) for item in value]
    if isinstance(ty, ProductType):
        return {
            (e.name if e.name is not None else f"col_{i}"): json_value(e.type, v)
            for i, (e, v) in enumerate(zip(ty.elements, value, strict=True))
        }
    assert isinstance(ty, SumType)
    return _sum_json(ty, kind, value)


def _sum_json(ty: SumType, kind: str | None, value: Any) -> Any:
    if kind == "option":
        if value is None:
            return {"none": {}}
        inner = value.value if isinstance(value, Some) else value
        return {"some": json_value(ty.variants[0].type, inner)}
    if isinstance(value, ScheduleAt):
        value = SumValue(value.tag, value.value)
    tag, payload = value[0], value[1]
    variant = ty.variants[tag]
    return {variant.name or str(tag): json_value(variant.type, payload)}


# ---- parameters in --------------------------------------------------------------------------------------------------


def param_literal(data: bytes | None, binary: bool, oid: int) -> tuple[str, str]:
    """A parameter's value as the SQL layer's literal ``(kind, text)``; ``oid`` is the type it was sent as.

    Text values stay ``text`` (read as a literal of the column's type); binary values are read by their type."""
    if data is None:
        return "null", "NULL"
    if not binary:
        try:
            return "text", data.decode("utf-8")
        except UnicodeDecodeError:
            raise ParamError("a text parameter is not valid UTF-8") from None
    reader = _BINARY_READERS.get(oid)
    if reader is None:
        raise ParamError(f"binary parameters of type {oid} are not supported")
    try:
        return reader(data)
    except (struct.error, ValueError, InvalidOperation, OverflowError) as exc:
        raise ParamError(f"an invalid binary parameter of type {oid}: {exc}") from None


def _unpack(fmt: str) -> Callable[[bytes], tuple[str, str]]:
    layout = struct.Struct(fmt)

    def read(data: bytes) -> tuple[str, str]:
        (value,) = layout.unpack(data)
        if isinstance(value, bool):
            return "bool", "true" if value else "false"
        if isinstance(value, float):
            return "number", repr(value) if math.isfinite(value) else "nan"
        return "number", str(value)

    return read


def _text(data: bytes) -> tuple[str, str]:
    return "string", data.decode("utf-8")


def _timestamp(data: bytes) -> tuple[str, str]:
    (micros,) = struct.unpack(">q", data)
    moment = _EPOCH + dt.timedelta(microseconds=micros + _PG_EPOCH_MICROS)
    return "string", moment.isoformat()


def _numeric(data: bytes) -> tuple[str, str]:
    count, weight, sign, _scale = struct.unpack_from(">hhHH", data)
    if count < 0 or len(data) != 8 + 2 * count:
        raise ValueError("the digit count does not match the length")
    if sign == 0xC000:
        return "number", "nan"
    digits = struct.unpack_from(f">{count}H", data, 8)
    if any(d > 9999 for d in digits) or sign not in (0, 0x4000):
        raise ValueError("not a numeric value")
    if not digits:
        return "number", "0"
    whole = 0
    for digit in digits:
        whole = whole * 10000 + digit
    exponent = 4 * (weight - count + 1)
    # built from its digits, so exact at any size (Decimal arithmetic would round to 28 digits)
    value = Decimal((1 if sign == 0x4000 else 0, tuple(int(c) for c in str(whole)), exponent))
    return "number", format(value, "f")


def _uuid(data: bytes) -> tuple[str, str]:
    if len(data) != 16:
        raise ValueError("a uuid is 16 bytes")
    return "string", _uuid_text(Uuid.from_be_bytes(data))


_BINARY_READERS: dict[int, Callable[[bytes], tuple[str, str]]] = {
    BOOL: _unpack(">?"),
    INT2: _unpack(">h"),
    INT4: _unpack(">i"),
    INT8: _unpack(">q"),
    FLOAT4: _unpack(">f"),
    FLOAT8: _unpack(">d"),
    NUMERIC: _numeric,
    TEXT: _text,
    VARCHAR: _text,
    UNKNOWN: _text,
    JSON: _text,
    BYTEA: lambda data: ("hex", data.hex()),
    TIMESTAMPTZ: _timestamp,
    TIMESTAMP: _timestamp,
    UUID: _uuid,
}
