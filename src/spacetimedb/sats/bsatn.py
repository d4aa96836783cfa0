"""BSATN, SpacetimeDB's binary encoding of SATS values, with codecs compiled once per type.

Rules: little-endian fixed-width integers and floats; bool as one byte (0 or 1); strings and arrays as a u32
length/count then the elements (UTF-8 for strings); products as their fields in order with no framing; sums
as a u8 tag then the payload.

``codec(ty)`` generates Python source for the type (fixed-width runs of fields become one ``struct`` call)
and compiles it, so encoding or decoding a row costs a few C calls. The generated fast paths do not check
everything themselves: when one fails, the slow checker (``check.py``) or the interpreted decoder below
explains precisely what and where. Decoding never trusts a length: every length is checked against the bytes
that remain, so no input can make it allocate unboundedly.
"""

from __future__ import annotations

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

# Arrays of zero-sized elements consume no input; cap them so a 4-byte count cannot allocate billions.
MAX_ZERO_SIZED_ELEMENTS = 1 << 20

_STRUCT_CHARS = {
    "Bool": "B",
    "U8": "B",
    "I8": "b",
    "U16": "H",
    "I16": "h",
    "U32": "I",
    "I32": "i",
    "U64": "Q",
    "I64": "q",
    "F32": "f",
    "F64": "d",
}
_WIDE_INTS = {"U128": (16, False), "I128": (16, True), "U256": (32, False), "I256": (32, True)}
_WIDE_IDS: dict[str, tuple[type, int]] = {
    "identity": (Identity, 32),
    "connection_id": (ConnectionId, 16),
    "uuid": (Uuid, 16),
}
_MICROS_CLASSES: dict[str, type] = {"timestamp": Timestamp, "time_duration": TimeDuration}
_U32 = struct.Struct("<I")
_new = object.__new__


def _make_wide(cls: type) -> Callable[[int], Any]:
    def make(value: int) -> Any:
        obj: Any = _new(cls)
        obj._value = value
        return obj

    return make


def _make_micros(cls: type) -> Callable[[int], Any]:
    def make(micros: int) -> Any:
        obj: Any = _new(cls)
        obj._micros = micros
        return obj

    return make


class _Short(Exception):
    """Raised inside generated decoders; turned into a DecodeError with context at the top level."""


def _short(pos: int, need: int) -> None:
    raise _Short(f"needed {need} byte(s) at offset {pos}")


def _too_many(pos: int, count: int) -> None:
    raise _Short(f"array count {count} at offset {pos} exceeds the remaining input")


def _bad_bool(pos: int, byte: int) -> None:
    raise _Short(f"invalid bool byte {byte} at offset {pos}")


def _bad_tag(pos: int, tag: int, variants: int) -> None:
    raise _Short(f"unknown sum tag {tag} at offset {pos} (type has {variants} variants)")


def _trailing(pos: int, size: int) -> None:
    raise _Short(f"{size - pos} trailing byte(s) at offset {pos}")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return bytes(value)  # a list of ints; bytes() range-checks each element


def _enc_fail(*_: Any) -> None:
    raise EncodeError("value does not match its type")


@dataclass(frozen=True, slots=True)
class Codec:
    """Compiled BSATN codec of one type."""

    type: AlgebraicType
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes | bytearray | memoryview], Any]
    decode_from: Callable[[Any, int], tuple[Any, int]]
    min_size: int
    fixed_size: int | None
    # ``encode`` without its error translation: what it raises on a bad value is some Python error, not an
    # ``EncodeError`` naming the type; for hot paths that fall back to ``encode`` when it raises
    encode_unchecked: Callable[[Any], bytes]


# ---- item kinds used by the generator ---------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """A fixed-width field packed by ``struct``; ``ends_run`` when variable data follows it (a length)."""

    char: str
    enc_arg: str
    enc_pre: list[str]
    dec_post: list[str]
    ends_run: bool = False
    tail_expr: str | None = None  # bytes appended right after the run (string/bytes data)


@dataclass(slots=True)
class _Seg:
    """A field encoded as a standalone bytes expression / decoded by standalone statements."""

    enc_pre: list[str]
    enc_expr: str
    dec_lines: list[str]


class _Compiler:
    def __init__(self, typespace: Typespace | None) -> None:
        self.typespace = typespace
        self.ns: dict[str, Any] = {
            "_to_tuple": product_to_tuple,
            "_short": _short,
            "_too_many": _too_many,
            "_bad_bool": _bad_bool,
            "_bad_tag": _bad_tag,
            "_trailing": _trailing,
            "_as_bytes": _as_bytes,
            "_enc_fail": _enc_fail,
            "_pack": struct.pack,
            "_unpack_from": struct.unpack_from,
            "_pack_u32": _U32.pack,
            "_unpack_u32": _U32.unpack_from,
            "_from_bytes": int.from_bytes,
            "_str": str,
            "_bytes": bytes,
            "_len": len,
            "tuple": tuple,
            "Some": Some,
            "SumValue": SumValue,
            "ScheduleAt": ScheduleAt,
            "EncodeError": EncodeError,
        }
        for kind, (cls, _) in _WIDE_IDS.items():
            self.ns[f"_cls_{kind}"] = cls
            self.ns[f"_mk_{kind}"] = _make_wide(cls)
        for kind, cls in _MICROS_CLASSES.items():
            self.ns[f"_cls_{kind}"] = cls
            self.ns[f"_mk_{kind}"] = _make_micros(cls)
        self.sources: list[str] = []
        self.enc_names: dict[Any, str] = {}
        self.dec_names: dict[Any, str] = {}
        self.min_sizes: dict[Any, int] = {}
        self.counter = 0

    # -- helpers --------------------------------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any, prefix: str = "_k") -> str:
        name = self.fresh(prefix)
        self.ns[name] = value
        return name

    def resolve(self, ty: AlgebraicType) -> AlgebraicType:
        if isinstance(ty, RefType):
            if self.typespace is None:
                raise EncodeError(f"type reference &{ty.index} needs a typespace")
            return self.typespace.resolve(ty)
        return ty

    def key(self, ty: AlgebraicType) -> Any:
        return ("ref", ty.index) if isinstance(ty, RefType) else ty

    def min_size(self, ty: AlgebraicType, visiting: frozenset[Any] = frozenset()) -> int:
        key = self.key(ty)
        if key in self.min_sizes:
            return self.min_sizes[key]
        if key in visiting:
            return 0  # a recursive occurrence: 0 is a safe lower bound
        visiting = visiting | {key}
        res = self.resolve(ty)
        if isinstance(res, PrimitiveType):
            size = (
                _U32.size
                if res.kind == "String"
                else struct.calcsize(_STRUCT_CHARS[res.kind])
                if res.kind in _STRUCT_CHARS
                else _WIDE_INTS[res.kind][0]
            )
        elif isinstance(res, ArrayType):
            size = 4
        elif isinstance(res, ProductType):
            size = sum(self.min_size(e.type, visiting) for e in res.elements)
        elif isinstance(res, SumType):
            size = 1 + min((self.min_size(v.type, visiting) for v in res.variants), default=0)
        else:
            raise EncodeError(f"unknown type {res!r}")
        self.min_sizes[key] = size
        return size

    def fixed_size(self, ty: AlgebraicType, visiting: frozenset[Any] = frozenset()) -> int | None:
        key = self.key(ty)
        if key in visiting:
            return None
        res = self.resolve(ty)
        if isinstance(res, PrimitiveType):
            if res.kind == "String":
                return None
            return self.min_size(res)
        if isinstance(res, ProductType):
            total = 0
            for e in res.elements:
                size = self.fixed_size(e.type, visiting | {key})
                if size is None:
                    return None
                total += size
            return total
        if isinstance(res, SumType):
            sizes = {self.fixed_size(v.type, visiting | {key}) for v in res.variants}
            if len(sizes) == 1 and None not in sizes:
                return 1 + sizes.pop()  # type: ignore[operator]  # None not in sizes, so an int
            return None
        return None

    # -- field classification ----------------------------------------------------------------------------

    def item(self, ty: AlgebraicType, var: str) -> _Run | _Seg:
        res = self.resolve(ty)
        kind = special_kind(res)
        if isinstance(res, PrimitiveType):
            return self.primitive_item(res, var)
        if kind in _MICROS_CLASSES:
            cls = f"_cls_{kind}"
            return _Run(
                "q",
                f"{var}._micros",
                [f"if {var}.__class__ is not {cls}: _enc_fail()"],
                [f"{var} = _mk_{kind}({var})"],
            )
        if kind in _WIDE_IDS:
            size = _WIDE_IDS[kind][1]
            cls = f"_cls_{kind}"
            return _Seg(
                [f"if {var}.__class__ is not {cls}: _enc_fail()"],
                f"{var}._value.to_bytes({size}, 'little')",
                [
                    f"_e = pos + {size}",
                    f"if _e > _len(buf): _short(pos, {size})",
                    f"{var} = _mk_{kind}(_from_bytes(buf[pos:_e], 'little'))",
                    "pos = _e",
                ],
            )
        if self.is_bytes(res):
            data = self.fresh("b")
            return _Run(
                "I",
                f"_len({data})",
                [f"{data} = {var} if {var}.__class__ is bytes else _as_bytes({var})"],
                [
                    f"_e = pos + {var}",
                    f"if _e > _len(buf): _short(pos, {var})",
                    f"{var} = _bytes(buf[pos:_e])",
                    "pos = _e",
                ],
                ends_run=True,
                tail_expr=data,
            )
        enc = self.enc_fn(ty)
        dec = self.dec_fn(ty)
        return _Seg([], f"{enc}({var})", [f"{var}, pos = {dec}(buf, pos)"])

    def primitive_item(self, ty: PrimitiveType, var: str) -> _Run | _Seg:
        kind = ty.kind
        if kind == "String":
            data = self.fresh("b")
            return _Run(
                "I",
                f"_len({data})",
                [f"{data} = {var}.encode('utf-8')"],
                [
                    f"_e = pos + {var}",
                    f"if _e > _len(buf): _short(pos, {var})",
                    f"{var} = _str(buf[pos:_e], 'utf-8')",
                    "pos = _e",
                ],
                ends_run=True,
                tail_expr=data,
            )
        if kind == "Bool":
            return _Run(
                "B",
                var,
                [f"if {var}.__class__ is not bool: _enc_fail()"],
                [f"if {var} > 1: _bad_bool(pos, {var})", f"{var} = {var} == 1"],
            )
        if kind in _WIDE_INTS:
            size, signed = _WIDE_INTS[kind]
            return _Seg(
                [],
                f"{var}.to_bytes({size}, 'little', signed={signed})",
                [
                    f"_e = pos + {size}",
                    f"if _e > _len(buf): _short(pos, {size})",
                    f"{var} = _from_bytes(buf[pos:_e], 'little', signed={signed})",
                    "pos = _e",
                ],
            )
        return _Run(_STRUCT_CHARS[kind], var, [], [])

    # -- sequences of items (product fields, or a single option payload) ----------------------------------

    def enc_items(self, items: list[_Run | _Seg]) -> tuple[list[str], list[str]]:
        """Pre-statements and the bytes expressions whose concatenation encodes ``items`` in order."""
        pre: list[str] = []
        exprs: list[str] = []
        chars: list[str] = []
        args: list[str] = []

        def flush() -> None:
            if chars:
                packer = self.const(struct.Struct("<" + "".join(chars)).pack, "_p")
                exprs.append(f"{packer}({', '.join(args)})")
                chars.clear()
                args.clear()

        for it in items:
            pre.extend(it.enc_pre)
            if isinstance(it, _Run):
                chars.append(it.char)
                args.append(it.enc_arg)
                if it.ends_run:
                    flush()
                    assert it.tail_expr is not None
                    exprs.append(it.tail_expr)
            else:
                flush()
                exprs.append(it.enc_expr)
        flush()
        return pre, exprs

    def dec_items(self, items: list[_Run | _Seg], names: list[str]) -> list[str]:
        lines: list[str] = []
        chars: list[str] = []
        run_vars: list[str] = []
        posts: list[str] = []

        def flush() -> None:
            if chars:
                st = struct.Struct("<" + "".join(chars))
                unpacker = self.const(st.unpack_from, "_u")
                target = ", ".join(run_vars) + ("," if len(run_vars) == 1 else "")
                lines.append(f"{target} = {unpacker}(buf, pos)")
                lines.append(f"pos += {st.size}")
                lines.extend(posts)
                chars.clear()
                run_vars.clear()
                posts.clear()

        for it, var in zip(items, names, strict=True):
            if isinstance(it, _Run):
                chars.append(it.char)
                run_vars.append(var)
                posts.extend(it.dec_post)
                if it.ends_run:
                    flush()
            else:
                flush()
                lines.extend(it.dec_lines)
        flush()
        return lines

    # -- per-type functions ------------------------------------------------------------------------------

    def enc_fn(self, ty: AlgebraicType) -> str:
        key = self.key(ty)
        if key in self.enc_names:
            return self.enc_names[key]
        name = self.fresh("_enc")
        self.enc_names[key] = name
        if isinstance(ty, RefType):
            target = self.enc_fn(self.resolve(ty))
            self.sources.append(f"def {name}(v):\n    return {target}(v)\n")
            return name
        body = self.enc_body(ty)
        self.sources.append(f"def {name}(v):\n" + "".join(f"    {line}\n" for line in body))
        return name

    def dec_fn(self, ty: AlgebraicType) -> str:
        key = self.key(ty)
        if key in self.dec_names:
            return self.dec_names[key]
        name = self.fresh("_dec")
        self.dec_names[key] = name
        if isinstance(ty, RefType):
            target = self.dec_fn(self.resolve(ty))
            self.sources.append(f"def {name}(buf, pos):\n    return {target}(buf, pos)\n")
            return name
        body = self.dec_body(ty)
        self.sources.append(f"def {name}(buf, pos):\n" + "".join(f"    {line}\n" for line in body))
        return name

    def is_bytes(self, ty: AlgebraicType) -> bool:
        return isinstance(ty, ArrayType) and self.resolve(ty.elem) == PrimitiveType("U8")

    def enc_body(self, ty: AlgebraicType) -> list[str]:
        if isinstance(ty, ProductType) and special_kind(ty) is None:
            return self.enc_product(ty)
        if isinstance(ty, SumType):
            return self.enc_sum(ty)
        if isinstance(ty, ArrayType) and not self.is_bytes(ty):
            return self.enc_array(ty)
        pre, exprs = self.enc_items([self.item(ty, "v")])
        return [*pre, f"return {' + '.join(exprs)}"]

    def dec_body(self, ty: AlgebraicType) -> list[str]:
        if isinstance(ty, ProductType) and special_kind(ty) is None:
            return self.dec_product(ty)
        if isinstance(ty, SumType):
            return self.dec_sum(ty)
        if isinstance(ty, ArrayType) and not self.is_bytes(ty):
            return self.dec_array(ty)
        return [*self.dec_items([self.item(ty, "v")], ["v"]), "return v, pos"]

    def enc_product(self, ty: ProductType) -> list[str]:
        n = len(ty.elements)
        names = self.const(ty.names, "_names")
        lines = [f"if v.__class__ is not tuple: v = _to_tuple(v, {names})"]
        if n == 0:
            return [*lines, "if v: _enc_fail()", "return b''"]
        fields = [f"a{i}" for i in range(n)]
        items = [self.item(e.type, f) for e, f in zip(ty.elements, fields, strict=True)]
        pre, exprs = self.enc_items(items)
        if (
            len(exprs) == 1
            and not pre
            and all(isinstance(it, _Run) and it.enc_arg == f for it, f in zip(items, fields, strict=True))
        ):
            # all fields are plain fixed-width numbers: pack the tuple directly
            packer = exprs[0].split("(", 1)[0]
            return [*lines, f"return {packer}(*v)"]
        lines.append(f"{', '.join(fields)}{',' if n == 1 else ''} = v")
        return [*lines, *pre, f"return {' + '.join(exprs)}"]

    def dec_product(self, ty: ProductType) -> list[str]:
        n = len(ty.elements)
        if n == 0:
            return ["return (), pos"]
        fields = [f"a{i}" for i in range(n)]
        items = [self.item(e.type, f) for e, f in zip(ty.elements, fields, strict=True)]
        lines = self.dec_items(items, fields)
        return [*lines, f"return ({', '.join(fields)}{',' if n == 1 else ''}), pos"]

    def enc_sum(self, ty: SumType) -> list[str]:
        kind = special_kind(ty)
        if kind == "option":
            pre, exprs = self.enc_items([self.item(ty.variants[0].type, "v")])
            return [
                "if v is None: return b'\\x01'",
                "if v.__class__ is Some: v = v.value",
                *pre,
                f"return b'\\x00' + {' + '.join(exprs)}",
            ]
        lines = []
        if kind == "schedule_at":
            lines.append("if v.__class__ is not ScheduleAt: _enc_fail()")
        lines.append("tag, p = v")
        for tag, variant in enumerate(ty.variants):
            prefix = repr(bytes([tag]))
            lines.append(f"if tag == {tag}:")
            if self.resolve(variant.type) == ProductType(()):
                lines.append(f"    return {prefix}")
                continue
            pre, exprs = self.enc_items([self.item(variant.type, "p")])
            lines.extend(f"    {line}" for line in pre)
            lines.append(f"    return {prefix} + {' + '.join(exprs)}")
        lines.append("_enc_fail()")
        return lines

    def dec_sum(self, ty: SumType) -> list[str]:
        kind = special_kind(ty)
        count = len(ty.variants)
        lines = [
            "if pos >= _len(buf): _short(pos, 1)",
            "tag = buf[pos]",
            "pos += 1",
        ]
        if kind == "option":
            inner = ty.variants[0].type
            wrap = "Some(p)" if special_kind(self.resolve(inner)) == "option" else "p"
            body = self.dec_items([self.item(inner, "p")], ["p"])
            return [
                *lines,
                "if tag == 1: return None, pos",
                "if tag != 0: _bad_tag(pos - 1, tag, 2)",
                *body,
                f"return {wrap}, pos",
            ]
        make = "ScheduleAt" if kind == "schedule_at" else "SumValue"
        for tag, variant in enumerate(ty.variants):
            lines.append(f"if tag == {tag}:")
            if self.resolve(variant.type) == ProductType(()):
                lines.append(f"    return {make}({tag}, ()), pos")
                continue
            body = self.dec_items([self.item(variant.type, "p")], ["p"])
            lines.extend(f"    {line}" for line in body)
            lines.append(f"    return {make}({tag}, p), pos")
        lines.append(f"_bad_tag(pos - 1, tag, {count})")
        return lines

    def enc_array(self, ty: ArrayType) -> list[str]:
        elem = self.resolve(ty.elem)
        if isinstance(elem, PrimitiveType) and elem.kind in _STRUCT_CHARS and elem.kind != "Bool":
            char = _STRUCT_CHARS[elem.kind]
            return ["n = _len(v)", f"return _pack('<I%d{char}' % n, n, *v)"]
        if isinstance(elem, PrimitiveType) and elem.kind == "String":
            return [
                "parts = [_pack_u32(_len(v))]",
                "for s in v:",
                "    b = s.encode('utf-8')",
                "    parts.append(_pack_u32(_len(b)))",
                "    parts.append(b)",
                "return b''.join(parts)",
            ]
        enc = self.enc_fn(ty.elem)
        return [f"return _pack_u32(_len(v)) + b''.join([{enc}(x) for x in v])"]

    def dec_array(self, ty: ArrayType) -> list[str]:
        elem = self.resolve(ty.elem)
        min_size = self.min_size(ty.elem)
        lines = ["n, = _unpack_u32(buf, pos)", "pos += 4"]
        if min_size:
            lines.append(f"if n * {min_size} > _len(buf) - pos: _too_many(pos - 4, n)")
        else:
            lines.append(f"if n > {MAX_ZERO_SIZED_ELEMENTS}: _too_many(pos - 4, n)")
        if isinstance(elem, PrimitiveType) and elem.kind in _STRUCT_CHARS and elem.kind != "Bool":
            char = _STRUCT_CHARS[elem.kind]
            size = struct.calcsize(char)
            return [
                *lines,
                f"return _unpack_from('<%d{char}' % n, buf, pos), pos + n * {size}",
            ]
        body = self.dec_items([self.item(ty.elem, "x")], ["x"])
        return [
            *lines,
            "out = []",
            "append = out.append",
            "for _ in range(n):",
            *(f"    {line}" for line in body),
            "    append(x)",
            "return tuple(out), pos",
        ]

    def whole_buffer_decoder(self, ty: AlgebraicType) -> str | None:
        """For a product: a decoder of a whole buffer, without the (value, pos) round trip of nested ones."""
        res = self.resolve(ty)
        if not isinstance(res, ProductType) or special_kind(res) is not None or not res.elements:
            return None
        body = self.dec_product(res)
        *lines, last = body
        value_expr = last.removeprefix("return ").removesuffix(", pos")
        if len(lines) == 2 and lines[0].endswith("(buf, pos)") and lines[1].startswith("pos += "):
            # a single run of plain numbers: struct.unpack checks the exact length itself
            unpacker = lines[0].split(" = ", 1)[1].removesuffix("(buf, pos)")
            return f"{unpacker}.__self__.unpack"
        name = self.fresh("_top")
        source = [f"def {name}(buf):", "    pos = 0", *(f"    {line}" for line in lines)]
        source += ["    if pos != _len(buf): _trailing(pos, _len(buf))", f"    return {value_expr}"]
        self.sources.append("\n".join(source) + "\n")
        return name

    def finish(self) -> None:
        source = "\n".join(self.sources)
        self.sources.clear()
        exec(compile(source, "<bsatn-codec>", "exec"), self.ns)


def _encode_error(
    ty: AlgebraicType, typespace: Typespace | None, value: Any, exc: BaseException
) -> EncodeError:
    if isinstance(exc, EncodeError) and str(exc) != "value does not match its type":
        return exc
    try:
        check_value(ty, value, typespace)
    except EncodeError as precise:
        return precise
    except RecursionError:
        return EncodeError(f"value nested too deeply to encode as {ty!r}")
    return EncodeError(f"cannot encode {value!r} as {ty!r}: {exc}")


_DECODE_FAILURES = (
    _Short,
    struct.error,
    UnicodeDecodeError,
    IndexError,
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,
)


def _build(ty: AlgebraicType, typespace: Typespace | None) -> Codec:
    compiler = _Compiler(typespace)
    enc_name = compiler.enc_fn(ty)
    dec_name = compiler.dec_fn(ty)
    whole_name = compiler.whole_buffer_decoder(ty)
    compiler.finish()
    raw_enc: Callable[[Any], bytes] = compiler.ns[enc_name]
    raw_dec: Callable[[Any, int], tuple[Any, int]] = compiler.ns[dec_name]
    raw_whole = eval(whole_name, compiler.ns) if whole_name else None

    def encode(value: Any) -> bytes:
        try:
            return raw_enc(value)
        except (
            EncodeError,
            struct.error,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            IndexError,
            RecursionError,
        ) as exc:
            raise _encode_error(ty, typespace, value, exc) from None

    def decode_from(buf: Any, pos: int) -> tuple[Any, int]:
        try:
            return raw_dec(buf, pos)
        except _DECODE_FAILURES as exc:
            raise _decode_error(ty, exc, pos) from None

    def decode_whole(data: bytes | bytearray | memoryview) -> Any:
        try:
            return raw_whole(data)  # type: ignore[misc]  # raw_whole is None only when decode_whole is not used
        except _DECODE_FAILURES as exc:
            raise _decode_error(ty, exc, 0) from None

    def decode(data: bytes | bytearray | memoryview) -> Any:
        try:
            value, end = raw_dec(data, 0)
        except _DECODE_FAILURES as exc:
            raise _decode_error(ty, exc, 0) from None
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing byte(s) after a {ty!r} at offset {end}")
        return value

    return Codec(
        ty,
        encode,
        decode_whole if raw_whole else decode,
        decode_from,
        compiler.min_size(ty),
        compiler.fixed_size(ty),
        raw_enc,
    )


def _decode_error(ty: AlgebraicType, exc: BaseException, start: int) -> DecodeError:
    if isinstance(exc, _Short):
        return DecodeError(f"invalid {ty!r}: {exc}")
    if isinstance(exc, struct.error):
        return DecodeError(
            f"invalid {ty!r}: input too short or too long (decoding from offset {start}): {exc}"
        )
    if isinstance(exc, UnicodeDecodeError):
        return DecodeError(
            f"invalid {ty!r}: string is not valid UTF-8 ({exc.reason} at byte {exc.start} of the string)"
        )
    if isinstance(exc, RecursionError):
        return DecodeError(f"invalid {ty!r}: value nested too deeply")
    return DecodeError(f"invalid {ty!r}: {exc}")


_CACHE: dict[AlgebraicType, Codec] = {}


def codec(ty: AlgebraicType, typespace: Typespace | None = None) -> Codec:
    """The compiled codec of ``ty`` (refs resolved in ``typespace``), built once and cached."""
    if typespace is None:
        found = _CACHE.get(ty)
        if found is None:
            found = _CACHE[ty] = _build(ty, None)
        return found
    cache = typespace.codec_cache
    found = cache.get(ty)
    if found is None:
        found = cache[ty] = _build(ty, typespace)
    return found


def encode(ty: AlgebraicType, value: Any, typespace: Typespace | None = None) -> bytes:
    return codec(ty, typespace).encode(value)


def decode(
    ty: AlgebraicType, data: bytes | bytearray | memoryview, typespace: Typespace | None = None
) -> Any:
    return codec(ty, typespace).decode(data)
