"""SATS-JSON: the JSON forms of SATS values that SpacetimeDB uses, compiled once per type into closures.

Output (``to_json``, the *typed* form used for messages, reducer arguments and module definitions):
- Bool, integers up to 128 bits and floats are JSON numbers; U256/I256 are strings ``"0x<hex>"``
  (``"-0x<hex>"`` when negative) because many JSON readers cannot hold them as numbers.
- String is a string; Array<U8> is a hex string (no ``0x``); other arrays are JSON arrays.
- A product whose fields all have names is an object keyed by field name, otherwise an array in field order.
- A sum is ``{"<variant name>": payload}`` (the tag as a decimal string when the variant has no name); a unit
  payload is ``[]``. Option is ``{"some": v}`` / ``{"none": []}``.
- The special types keep their product shape: ``{"__identity__": "0x<64 hex>"}``,
  ``{"__connection_id__": <u128>}``, ``{"__timestamp_micros_since_unix_epoch__": <i64>}``,
  ``{"__time_duration_micros__": <i64>}``, ``{"__uuid__": <u128>}``.

``to_json_untyped`` is the *untyped* form used for SQL result rows: products are arrays, sums are
``[tag, payload]``.

Input (``from_json``) accepts every form above, plus: products as arrays or objects; sums as
``{"name": v}``, ``{"<tag>": v}`` or ``[tag, v]``; ``null`` for an option's none; integers as numbers or as
decimal / ``0x`` hex strings; bytes as hex strings or arrays of numbers; Identity / ConnectionId as bare hex
strings; Timestamp as micros or an RFC 3339 string; TimeDuration as micros.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .check import check_value, product_to_tuple
from .errors import DecodeError, EncodeError
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

Json = Any


@dataclass(frozen=True, slots=True)
class JsonCodec:
    type: AlgebraicType
    to_json: Callable[[Any], Json]
    to_json_untyped: Callable[[Any], Json]
    from_json: Callable[[Json], Any]


# what a value of these types looks like in JSON, for the error when one does not parse
_HEX_SHAPES: dict[type, str] = {
    Identity: 'an identity is 64 hex digits, "0x" in front optional (as `spacetime login show` prints it), '
    'or {"__identity__": "0x<64 hex digits>"}',
    ConnectionId: 'a connection id is 32 hex digits, "0x" in front optional, or an integer',
    Uuid: 'a UUID is 32 hex digits, "0x" in front optional, or an integer',
}


def _shape_error(cls: type, value: Json, path: str) -> DecodeError:
    where = f" at {path}" if path else ""
    return DecodeError(f"expected {cls.__name__}, got {value!r}{where}: {_HEX_SHAPES[cls]}")


def _fail(ty: AlgebraicType, value: Json, path: str, why: str = "") -> DecodeError:
    where = f" at {path}" if path else ""
    detail = f": {why}" if why else ""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return DecodeError(f"expected {ty!r}, got {shown}{where}{detail}")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _hex_int(value: int) -> str:
    return f"-0x{-value:x}" if value < 0 else f"0x{value:x}"


_F32 = struct.Struct("<f")


def _f32_shortest(value: float) -> float:
    """The float whose repr is the shortest decimal that reads back as the same f32, as upstream prints an f32
    (594806.56, where the f32's exact value 594806.5625 is what a double would print)."""
    if not math.isfinite(value) or value == 0:
        return value
    f32 = _to_f32(value)
    for digits in range(1, 10):  # 9 significant digits always round-trip an f32
        shorter = float(f"{f32:.{digits}g}")
        try:
            if _to_f32(shorter) == f32:
                return shorter
        except OverflowError:  # rounded up past the largest f32
            continue
    return f32


def _to_f32(value: float) -> float:
    """The f32 nearest to ``value``, as a Python float (what BSATN decoding of that f32 gives)."""
    nearest: float = _F32.unpack(_F32.pack(value))[0]
    return nearest


def _parse_int(ty: PrimitiveType, value: Json, path: str, strings: bool) -> int:
    """A JSON integer of ``ty``'s range. As upstream (serde_json), ``4.0`` and ``"4"`` are not integers; only
    where ``strings`` (128- and 256-bit integers, beyond what many JSON libraries keep exact, and the special
    products) is a decimal or hex string one."""
    if isinstance(value, bool):
        raise _fail(ty, value, path)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and strings:
        text = value.strip().replace("_", "")
        try:
            negative = text.startswith("-")
            digits = text[1:] if negative else text
            number = int(digits[2:], 16) if digits[:2].lower() == "0x" else int(digits, 10)
            number = -number if negative else number
        except ValueError:
            raise _fail(ty, value, path, "not an integer") from None
    else:
        raise _fail(ty, value, path)
    lo, hi = ty.integer_range()
    if not lo <= number <= hi:
        raise _fail(ty, value, path, f"out of range [{lo}, {hi}]")
    return number


class _Builder:
    def __init__(self, typespace: Typespace | None) -> None:
        self.typespace = typespace
        self.cache: dict[Any, tuple[Any, Any, Any]] = {}

    def resolve(self, ty: AlgebraicType) -> AlgebraicType:
        if isinstance(ty, RefType):
            if self.typespace is None:
                raise DecodeError(f"type reference &{ty.index} needs a typespace")
            return self.typespace.resolve(ty)
        return ty

    def build(self, ty: AlgebraicType) -> tuple[Any, Any, Any]:
        """(to_json, to_json_untyped, from_json(value, path)) for ``ty``; refs bind lazily (recursion)."""
        key = ("ref", ty.index) if isinstance(ty, RefType) else ty
        if key in self.cache:
            return self.cache[key]
        if isinstance(ty, RefType):
            slot: list[Any] = []
            self.cache[key] = (
                lambda v: slot[0](v),
                lambda v: slot[1](v),
                lambda j, p: slot[2](j, p),
            )
            slot.extend(self.build(self.resolve(ty)))
            return self.cache[key]
        if isinstance(ty, PrimitiveType):
            built = self.primitive(ty)
        elif isinstance(ty, ArrayType):
            built = self.array(ty)
        elif isinstance(ty, ProductType):
            built = self.product(ty)
        elif isinstance(ty, SumType):
            built = self.sum(ty)
        else:
            raise DecodeError(f"unknown type {ty!r}")
        self.cache[key] = built
        return built

    def primitive(self, ty: PrimitiveType) -> tuple[Any, Any, Any]:
        kind = ty.kind
        if kind == "Bool":

            def from_bool(j: Json, path: str) -> bool:
                if not isinstance(j, bool):
                    raise _fail(ty, j, path)
                return j

            return _same, _same, from_bool
        if kind == "String":

            def from_str(j: Json, path: str) -> str:
                if not isinstance(j, str):
                    raise _fail(ty, j, path)
                if not j.isascii() and not _is_unicode(j):
                    # JSON escapes can spell a lone surrogate, which no String can hold (it has no UTF-8)
                    raise _fail(ty, j, path, "not valid Unicode (a lone surrogate)")
                return j

            return _same, _same, from_str
        if ty.is_float:

            def from_float(j: Json, path: str) -> float:
                if isinstance(j, bool) or not isinstance(j, (int, float)):
                    if isinstance(j, str) and j.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
                        return float(j)
                    raise _fail(ty, j, path)
                number = float(j)
                if kind == "F32" and math.isfinite(number):
                    try:
                        return _to_f32(number)
                    except OverflowError:
                        raise _fail(ty, j, path, "out of range for F32") from None
                return number

            if kind == "F32":
                return _f32_shortest, _f32_shortest, from_float
            return _same, _same, from_float

        strings = kind in ("U128", "I128", "U256", "I256")

        def from_int(j: Json, path: str) -> int:
            return _parse_int(ty, j, path, strings)

        if kind in ("U256", "I256"):
            return _hex_int, _hex_int, from_int
        return _same, _same, from_int

    def array(self, ty: ArrayType) -> tuple[Any, Any, Any]:
        elem = self.resolve(ty.elem)
        if elem == PrimitiveType("U8"):
            return _bytes_to_hex, _bytes_to_hex, self.bytes_from_json(ty)
        to_elem, to_elem_untyped, from_elem = self.build(ty.elem)

        def to_json(v: Any) -> Json:
            return [to_elem(x) for x in v]

        def to_json_untyped(v: Any) -> Json:
            return [to_elem_untyped(x) for x in v]

        def from_json(j: Json, path: str) -> tuple[Any, ...]:
            if not isinstance(j, (list, tuple)):
                raise _fail(ty, j, path, "not an array")
            return tuple(from_elem(x, f"{path}[{i}]") for i, x in enumerate(j))

        return to_json, to_json_untyped, from_json

    def bytes_from_json(self, ty: AlgebraicType) -> Callable[[Json, str], bytes]:
        def from_json(j: Json, path: str) -> bytes:
            if isinstance(j, str):
                text = j[2:] if j[:2] in ("0x", "0X") else j
                try:
                    return bytes.fromhex(text)
                except ValueError:
                    raise _fail(ty, j, path, "invalid hex") from None
            if isinstance(j, list) and all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 256 for x in j
            ):
                return bytes(j)
            raise _fail(ty, j, path)

        return from_json

    def product(self, ty: ProductType) -> tuple[Any, Any, Any]:
        kind = special_kind(ty)
        if kind is not None:
            return self.special_product(ty, kind)
        names = ty.names
        fields = [self.build(e.type) for e in ty.elements]
        to_fields = [f[0] for f in fields]
        to_fields_untyped = [f[1] for f in fields]
        from_fields = [f[2] for f in fields]
        named = bool(names) and None not in names
        labels = [n if n is not None else str(i) for i, n in enumerate(names)]

        def as_tuple(v: Any) -> tuple[Any, ...]:
            return v if type(v) is tuple else product_to_tuple(v, names)

        if named:

            def to_json(v: Any) -> Json:
                return {n: f(x) for n, f, x in zip(names, to_fields, as_tuple(v), strict=True)}

        else:

            def to_json(v: Any) -> Json:
                return [f(x) for f, x in zip(to_fields, as_tuple(v), strict=True)]

        def to_json_untyped(v: Any) -> Json:
            return [f(x) for f, x in zip(to_fields_untyped, as_tuple(v), strict=True)]

        def from_json(j: Json, path: str) -> tuple[Any, ...]:
            if isinstance(j, list):
                if len(j) != len(from_fields):
                    raise _fail(ty, j, path, f"expected {len(from_fields)} element(s), got {len(j)}")
                return tuple(
                    f(x, f"{path}.{label}") for f, x, label in zip(from_fields, j, labels, strict=True)
                )
            if isinstance(j, dict) and named:
                unknown = set(j) - set(names)
                if unknown:
                    raise _fail(ty, j, path, f"unknown field(s) {sorted(unknown)}")
                out = []
                for name, f in zip(names, from_fields, strict=True):
                    if name not in j:
                        raise _fail(ty, j, path, f"missing field {name!r}")
                    out.append(f(j[name], f"{path}.{name}"))
                return tuple(out)
            raise _fail(ty, j, path)

        return to_json, to_json_untyped, from_json

    def special_product(self, ty: ProductType, kind: str) -> tuple[Any, Any, Any]:
        tag = ty.elements[0].name
        assert tag is not None
        if kind == "identity":
            cls: type = Identity
            inner: Callable[[Any], Json] = lambda v: "0x" + v.to_hex()  # noqa: E731
        elif kind in ("connection_id", "uuid"):
            cls = ConnectionId if kind == "connection_id" else Uuid
            inner = lambda v: v.value  # noqa: E731
        else:
            cls = Timestamp if kind == "timestamp" else TimeDuration
            inner = lambda v: v.micros  # noqa: E731
        inner_type = ty.elements[0].type
        assert isinstance(inner_type, PrimitiveType)

        def to_json(v: Any) -> Json:
            if type(v) is not cls:
                raise EncodeError(f"expected {cls.__name__}, got {v!r}")
            return {tag: inner(v)}

        def to_json_untyped(v: Any) -> Json:
            return [to_json(v)[tag]]

        def from_json(j: Json, path: str) -> Any:
            raw = j
            if isinstance(j, dict):
                if set(j) != {tag}:
                    raise _fail(ty, j, path)
                raw = j[tag]
            elif isinstance(j, list):
                if len(j) != 1:
                    raise _fail(ty, j, path)
                raw = j[0]
            if isinstance(raw, str) and cls in (Identity, ConnectionId, Uuid):
                digits = raw[2:] if raw[:2] in ("0x", "0X") else raw
                if len(digits) == 2 * (32 if cls is Identity else 16):
                    try:
                        return cls.from_hex(digits)
                    except ValueError:
                        raise _shape_error(cls, j, path) from None
            if isinstance(raw, str) and cls is Timestamp and not raw.lstrip("-").isdigit():
                try:
                    return Timestamp.parse(raw)
                except ValueError:
                    raise _fail(ty, j, path, "invalid timestamp") from None
            try:
                number = _parse_int(inner_type, raw, path, strings=True)
            except DecodeError:
                if cls not in _HEX_SHAPES:
                    raise
                raise _shape_error(cls, j, path) from None
            return cls(number)

        return to_json, to_json_untyped, from_json

    def sum(self, ty: SumType) -> tuple[Any, Any, Any]:
        kind = special_kind(ty)
        variants = [self.build(v.type) for v in ty.variants]
        labels = [v.name if v.name is not None else str(i) for i, v in enumerate(ty.variants)]
        by_label = {label: i for i, label in enumerate(labels)}
        by_label.update({str(i): i for i in range(len(labels))})
        units = [self.resolve(v.type) == ProductType(()) for v in ty.variants]

        def parts(v: Any) -> tuple[int, Any]:
            if kind == "option":
                if v is None:
                    return 1, ()
                return 0, v.value if type(v) is Some else v
            tag, payload = v
            return tag, payload

        def to_json(v: Any) -> Json:
            tag, payload = parts(v)
            return {labels[tag]: [] if units[tag] else variants[tag][0](payload)}

        def to_json_untyped(v: Any) -> Json:
            tag, payload = parts(v)
            return [tag, [] if units[tag] else variants[tag][1](payload)]

        def make(tag: int, payload: Any) -> Any:
            if kind == "option":
                if tag == 1:
                    return None
                inner_is_option = special_kind(self.resolve(ty.variants[0].type)) == "option"
                return Some(payload) if inner_is_option else payload
            if kind == "schedule_at":
                return ScheduleAt(tag, payload)
            return SumValue(tag, payload)

        def from_json(j: Json, path: str) -> Any:
            if j is None and kind == "option":
                return None
            if isinstance(j, dict) and len(j) == 1:
                ((label, payload),) = j.items()
                tag = by_label.get(label)
            elif isinstance(j, list) and len(j) == 2 and isinstance(j[0], int) and not isinstance(j[0], bool):
                tag, payload = j
            elif isinstance(j, str) and j in by_label and units[by_label[j]]:
                tag, payload = by_label[j], []
            else:
                raise _fail(ty, j, path)
            if tag is None or not 0 <= tag < len(variants):
                raise _fail(ty, j, path, "unknown variant")
            if units[tag]:
                if payload not in ([], {}, None):
                    raise _fail(ty, j, path, f"variant {labels[tag]!r} takes no payload")
                return make(tag, ())
            return make(tag, variants[tag][2](payload, f"{path}.{labels[tag]}"))

        return to_json, to_json_untyped, from_json


def _same(v: Any) -> Any:
    return v


def _bytes_to_hex(v: Any) -> str:
    return bytes(v).hex()


_CACHE: dict[AlgebraicType, JsonCodec] = {}


def json_codec(ty: AlgebraicType, typespace: Typespace | None = None) -> JsonCodec:
    """The compiled JSON codec of ``ty``, cached when there is no typespace."""
    if typespace is None and ty in _CACHE:
        return _CACHE[ty]
    to_json, to_json_untyped, from_json = _Builder(typespace).build(ty)

    def checked_to_json(v: Any, fn: Callable[[Any], Json] = to_json) -> Json:
        try:
            return fn(v)
        except (EncodeError, TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            check_value(ty, v, typespace)
            raise EncodeError(f"cannot convert {v!r} to JSON as {ty!r}: {exc}") from None

    def checked_untyped(v: Any) -> Json:
        return checked_to_json(v, to_json_untyped)

    def checked_from_json(j: Json) -> Any:
        try:
            return from_json(j, "")
        except RecursionError:
            raise DecodeError(f"JSON value nested too deeply for {ty!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, DecodeError):
                raise
            raise DecodeError(f"invalid JSON for {ty!r}: {exc}") from None

    built = JsonCodec(ty, checked_to_json, checked_untyped, checked_from_json)
    if typespace is None:
        _CACHE[ty] = built
    return built


def to_json(ty: AlgebraicType, value: Any, typespace: Typespace | None = None) -> Json:
    return json_codec(ty, typespace).to_json(value)


def to_json_untyped(ty: AlgebraicType, value: Any, typespace: Typespace | None = None) -> Json:
    return json_codec(ty, typespace).to_json_untyped(value)


def from_json(ty: AlgebraicType, value: Json, typespace: Typespace | None = None) -> Any:
    return json_codec(ty, typespace).from_json(value)
