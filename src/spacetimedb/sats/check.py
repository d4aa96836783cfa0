"""Value checking against a type, with a path to the offending part.

The compiled codecs trust their fast paths; when one of them fails, this module explains why, precisely.
It is also the validator used at API boundaries (``check_value``) and the converter that accepts the
friendly forms of product values (records, dicts, lists).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .errors import EncodeError
from .types import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    SumType,
    Typespace,
    special_kind,
)
from .values import ConnectionId, Identity, ScheduleAt, Some, SumValue, TimeDuration, Timestamp, Uuid

_F32_MAX = 3.4028234663852886e38
_SPECIAL_CLASSES: dict[str, type] = {
    "identity": Identity,
    "connection_id": ConnectionId,
    "timestamp": Timestamp,
    "time_duration": TimeDuration,
    "uuid": Uuid,
}


def product_to_tuple(value: Any, names: tuple[str | None, ...]) -> tuple[Any, ...]:
    """Accept the friendly forms of a product value and return the canonical tuple.

    Accepted: tuple, list, mapping by field name, an object with ``__sats_tuple__()``, a dataclass, or any
    object carrying every field as an attribute.
    """
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        return tuple(value)
    to_tuple = getattr(value, "__sats_tuple__", None)
    if to_tuple is not None:
        as_tuple: tuple[Any, ...] = to_tuple()
        return as_tuple
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing or None in names:
            raise EncodeError(f"product value is missing field(s) {missing}")
        return tuple(value[n] for n in names)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(getattr(value, f.name) for f in dataclasses.fields(value))
    if names and None not in names and all(hasattr(value, n) for n in names):  # type: ignore[arg-type]  # None not in names, so every n is a str
        return tuple(getattr(value, n) for n in names)  # type: ignore[arg-type]  # None not in names, so every n is a str
    raise EncodeError(
        f"expected a product value (tuple) with fields {list(names)}, got {type(value).__name__}"
    )


def sum_parts(value: Any) -> tuple[int, Any]:
    """Split a sum value (SumValue, ScheduleAt or any (tag, payload) pair) into tag and payload."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
        return value[0], value[1]
    raise EncodeError(f"expected a sum value (tag, payload), got {value!r}")


def _where(path: str) -> str:
    return f" at {path}" if path else ""


def check_value(ty: AlgebraicType, value: Any, typespace: Typespace | None = None, path: str = "") -> None:
    """Raise ``EncodeError`` naming the type, the value and where, if ``value`` is not a ``ty``."""
    _Checker(typespace).check(ty, value, path)


class _Checker:
    def __init__(self, typespace: Typespace | None) -> None:
        self.typespace = typespace

    def check(self, ty: AlgebraicType, value: Any, path: str) -> None:
        if isinstance(ty, RefType):
            if self.typespace is None:
                raise EncodeError(f"type reference &{ty.index} without a typespace{_where(path)}")
            ty = self.typespace.resolve(ty)
        if isinstance(ty, PrimitiveType):
            self.check_primitive(ty, value, path)
        elif isinstance(ty, ArrayType):
            self.check_array(ty, value, path)
        elif isinstance(ty, ProductType):
            self.check_product(ty, value, path)
        elif isinstance(ty, SumType):
            self.check_sum(ty, value, path)
        else:
            raise EncodeError(f"unknown type {ty!r}{_where(path)}")

    def check_primitive(self, ty: PrimitiveType, value: Any, path: str) -> None:
        kind = ty.kind
        if kind == "Bool":
            if not isinstance(value, bool):
                raise EncodeError(f"expected Bool, got {value!r}{_where(path)}")
        elif ty.is_integer:
            if not isinstance(value, int) or isinstance(value, bool):
                raise EncodeError(f"expected {kind} (an int), got {value!r}{_where(path)}")
            lo, hi = ty.integer_range()
            if not lo <= value <= hi:
                raise EncodeError(f"value {value} out of range for {kind} [{lo}, {hi}]{_where(path)}")
        elif ty.is_float:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise EncodeError(f"expected {kind} (a float), got {value!r}{_where(path)}")
            if kind == "F32" and math.isfinite(value) and abs(value) > _F32_MAX:
                raise EncodeError(f"value {value} out of range for F32{_where(path)}")
        elif kind == "String":
            if not isinstance(value, str):
                raise EncodeError(f"expected String, got {type(value).__name__} {value!r}{_where(path)}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise EncodeError(f"string is not valid Unicode ({exc.reason}){_where(path)}") from None

    def check_array(self, ty: ArrayType, value: Any, path: str) -> None:
        elem = self.typespace.resolve(ty.elem) if self.typespace is not None else ty.elem
        if elem == PrimitiveType("U8") and isinstance(value, (bytes, bytearray, memoryview)):
            return
        if not isinstance(value, (list, tuple)):
            raise EncodeError(
                f"expected Array<{ty.elem!r}> (a list), got {type(value).__name__}{_where(path)}"
            )
        if len(value) > 0xFFFF_FFFF:
            raise EncodeError(f"array too long ({len(value)} elements){_where(path)}")
        for i, item in enumerate(value):
            self.check(ty.elem, item, f"{path}[{i}]")

    def check_product(self, ty: ProductType, value: Any, path: str) -> None:
        kind = special_kind(ty)
        if kind is not None:
            cls = _SPECIAL_CLASSES[kind]
            if type(value) is not cls:
                raise EncodeError(
                    f"expected {cls.__name__}, got {type(value).__name__} {value!r}{_where(path)}"
                )
            return
        names = ty.names
        fields = product_to_tuple(value, names)
        if len(fields) != len(ty.elements):
            raise EncodeError(
                f"expected a product of {len(ty.elements)} field(s) {list(names)}, "
                f"got {len(fields)}{_where(path)}"
            )
        for i, (element, item) in enumerate(zip(ty.elements, fields, strict=True)):
            self.check(element.type, item, f"{path}.{element.name if element.name is not None else i}")

    def check_sum(self, ty: SumType, value: Any, path: str) -> None:
        kind = special_kind(ty)
        if kind == "option":
            if value is None:
                return
            if type(value) is Some:
                value = value.value
            self.check(ty.variants[0].type, value, f"{path}.some")
            return
        if kind == "schedule_at" and type(value) is not ScheduleAt:
            raise EncodeError(f"expected ScheduleAt, got {type(value).__name__} {value!r}{_where(path)}")
        if not isinstance(value, (SumValue, ScheduleAt, tuple)):
            raise EncodeError(f"expected a sum value (SumValue), got {type(value).__name__}{_where(path)}")
        tag, payload = sum_parts(value)
        if not 0 <= tag < len(ty.variants):
            raise EncodeError(
                f"sum tag {tag} out of range (type has {len(ty.variants)} variants){_where(path)}"
            )
        variant = ty.variants[tag]
        self.check(variant.type, payload, f"{path}.{variant.name if variant.name is not None else tag}")
