"""Literals: parsing the text of a literal at a column's type, and naming types in messages."""

from __future__ import annotations

import datetime as dt
import re
import struct
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from spacetimedb.sats import (
    AlgebraicType,
    ArrayType,
    ConnectionId,
    Identity,
    PrimitiveType,
    SumType,
    SumValue,
    Timestamp,
    Uuid,
    option_inner,
    special_kind,
)
from spacetimedb.sats.types import U8

from . import ast
from .errors import SqlTypeError

# Integers written with more digits than this are rejected before Decimal does arbitrary work on them.
_MAX_NUMBER_CHARS = 100


def type_name(ty: AlgebraicType) -> str:
    """How messages spell a type: ``U32``, ``String``, ``Identity``, ``Option<I64>``, ``Array<U8>``."""
    kind = special_kind(ty)
    if kind is not None:
        inner = option_inner(ty)
        if inner is not None:
            return f"Option<{type_name(inner)}>"
        return {
            "identity": "Identity",
            "connection_id": "ConnectionId",
            "timestamp": "Timestamp",
            "time_duration": "TimeDuration",
            "uuid": "Uuid",
            "schedule_at": "ScheduleAt",
        }.get(kind, repr(ty))
    if isinstance(ty, ArrayType):
        return f"Array<{type_name(ty.elem)}>"
    return repr(ty)


def is_comparable(ty: AlgebraicType) -> bool:
    """Types with a total order SQL may compare with ``< <= > >=`` (and ``=``)."""
    if isinstance(ty, PrimitiveType):
        return True
    if ty == ArrayType(U8):
        return True
    return special_kind(ty) in ("identity", "connection_id", "timestamp", "time_duration", "uuid")


def is_equatable(ty: AlgebraicType) -> bool:
    """Types SQL may compare with ``=`` and ``<>`` only: options of comparable types and plain enums."""
    inner = option_inner(ty)
    if inner is not None:
        return is_comparable(inner)
    return isinstance(ty, SumType) and special_kind(ty) is None and ty.is_simple_enum()


class LiteralError(ValueError):
    """The literal text does not denote a value of the type."""


def literal_value(lit: ast.Literal, ty: AlgebraicType, column: str | None = None) -> Any:
    """The value of ``lit`` at type ``ty``; ``SqlTypeError`` naming the column and both types otherwise."""
    try:
        return _parse(lit, ty)
    except LiteralError:
        where = f" (column `{column}`)" if column else ""
        raise SqlTypeError(
            f"The literal expression `{lit.to_sql()}` cannot be parsed as type `{type_name(ty)}`{where}"
        ) from None


def _parse(lit: ast.Literal, ty: AlgebraicType) -> Any:
    if isinstance(ty, PrimitiveType):
        return _parse_primitive(lit, ty)
    inner = option_inner(ty)
    if inner is not None:
        return None if lit.kind == "null" else _parse(lit, inner)
    kind = special_kind(ty)
    if kind == "identity":
        return Identity(_parse_hex_int(lit, 32))
    if kind == "connection_id":
        return ConnectionId(_parse_hex_int(lit, 16))
    if kind == "timestamp":
        return _parse_timestamp(lit)
    if kind == "uuid":
        return _parse_uuid(lit)
    if ty == ArrayType(U8):
        return _parse_bytes(lit)
    if isinstance(ty, SumType) and kind is None and ty.is_simple_enum() and lit.kind == "string":
        for tag, variant in enumerate(ty.variants):
            if variant.name == lit.text:
                return SumValue(tag, ())
    raise LiteralError


def _parse_primitive(lit: ast.Literal, ty: PrimitiveType) -> Any:
    if ty.kind == "Bool":
        if lit.kind == "bool":
            return lit.text == "true"
        raise LiteralError
    if ty.kind == "String":
        if lit.kind in ("string", "number"):
            return lit.text
        raise LiteralError
    if lit.kind != "number":
        raise LiteralError
    if ty.is_float:
        return _parse_float(lit.text, ty.kind == "F32")
    return _parse_int(lit.text, ty)


def _parse_int(text: str, ty: PrimitiveType) -> int:
    if len(text) > _MAX_NUMBER_CHARS:
        raise LiteralError
    if text.isascii() and (text.isdigit() or (text[:1] == "-" and text[1:].isdigit())):
        value = int(text)  # the common case, without Decimal
        low, high = ty.integer_range()
        if not low <= value <= high:
            raise LiteralError
        return value
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise LiteralError from None
    if not number.is_finite():
        raise LiteralError
    # scientific notation may ask for a huge exponent: bound it before making an int of it
    if number.adjusted() > 80:
        raise LiteralError
    if number != number.to_integral_value():
        raise LiteralError
    value = int(number)
    low, high = ty.integer_range()
    if not low <= value <= high:
        raise LiteralError
    return value


def _parse_float(text: str, single: bool) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise LiteralError
    try:
        value = float(text)
    except ValueError:
        raise LiteralError from None
    if single:
        try:
            value = struct.unpack("<f", struct.pack("<f", value))[0]
        except OverflowError:
            value = float("inf") if value > 0 else float("-inf")
    return value


def _hex_digits(lit: ast.Literal) -> str:
    if lit.kind == "hex":
        return lit.text
    if lit.kind == "string":
        text = lit.text[2:] if lit.text[:2] in ("0x", "0X") else lit.text
        if re.fullmatch(r"[0-9a-fA-F]*", text):
            return text
    raise LiteralError


def _parse_hex_int(lit: ast.Literal, size: int) -> int:
    digits = _hex_digits(lit)
    if not digits or len(digits) > 2 * size:
        raise LiteralError
    return int(digits, 16)


def _parse_bytes(lit: ast.Literal) -> bytes:
    digits = _hex_digits(lit)
    if len(digits) % 2:
        digits = "0" + digits
    return bytes.fromhex(digits)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _parse_timestamp(lit: ast.Literal) -> Timestamp:
    if lit.kind != "string":
        raise LiteralError
    match = _RFC3339.fullmatch(lit.text.strip())
    if match is None:
        raise LiteralError
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC
        )
    except ValueError:
        raise LiteralError from None
    micros = int((fraction or "").ljust(9, "0")[:6] or 0)
    offset = 0
    if sign is not None:
        offset = (int(off_h) * 60 + int(off_m)) * 60 * 1_000_000 * (1 if sign == "+" else -1)
    try:
        return Timestamp(Timestamp.from_datetime(moment).micros + micros - offset)
    except (ValueError, OverflowError):
        raise LiteralError from None


def _parse_uuid(lit: ast.Literal) -> Uuid:
    if lit.kind == "hex":
        return Uuid(_parse_hex_int(lit, 16))
    if lit.kind != "string":
        raise LiteralError
    try:
        return Uuid(uuid.UUID(lit.text).int)
    except ValueError:
        raise LiteralError from None
