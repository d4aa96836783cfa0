"""Algebraic types: primitives, arrays, products, sums, refs into a typespace, and the special types.

Types are immutable, hashable and compared structurally, so they can key codec caches and be compared when a
module's schema is migrated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


class AlgebraicType:
    """Base class of every SATS type."""

    __slots__ = ()

    def is_primitive(self) -> bool:
        return False


class RecursiveTypeError(ValueError):
    """A type refers to itself (directly or not), or to a ref its typespace does not have: it has no inline form."""

    def __init__(self, ref: int) -> None:
        super().__init__(f"type reference &{ref} is recursive or out of range")
        self.ref = ref


@dataclass(frozen=True, slots=True)
class PrimitiveType(AlgebraicType):
    """A builtin scalar: Bool, integers up to 256 bits, F32, F64 or String."""

    kind: str

    # (struct format, byte width, signed) of the integer kinds; 128/256-bit ones have no struct format.
    INTEGER_KINDS: ClassVar[dict[str, tuple[str | None, int, bool]]] = {
        "U8": ("B", 1, False),
        "I8": ("b", 1, True),
        "U16": ("H", 2, False),
        "I16": ("h", 2, True),
        "U32": ("I", 4, False),
        "I32": ("i", 4, True),
        "U64": ("Q", 8, False),
        "I64": ("q", 8, True),
        "U128": (None, 16, False),
        "I128": (None, 16, True),
        "U256": (None, 32, False),
        "I256": (None, 32, True),
    }
    KINDS: ClassVar[tuple[str, ...]] = (
        "Bool",
        "U8",
        "I8",
        "U16",
        "I16",
        "U32",
        "I32",
        "U64",
        "I64",
        "U128",
        "I128",
        "U256",
        "I256",
        "F32",
        "F64",
        "String",
    )

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown primitive type {self.kind!r}")

    def is_primitive(self) -> bool:
        return True

    @property
    def is_integer(self) -> bool:
        return self.kind in self.INTEGER_KINDS

    @property
    def is_float(self) -> bool:
        return self.kind in ("F32", "F64")

    def integer_range(self) -> tuple[int, int]:
        """Inclusive (min, max) of an integer kind."""
        _, width, signed = self.INTEGER_KINDS[self.kind]
        bits = width * 8
        if signed:
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    def __repr__(self) -> str:
        return self.kind


BOOL = PrimitiveType("Bool")
U8 = PrimitiveType("U8")
I8 = PrimitiveType("I8")
U16 = PrimitiveType("U16")
I16 = PrimitiveType("I16")
U32 = PrimitiveType("U32")
I32 = PrimitiveType("I32")
U64 = PrimitiveType("U64")
I64 = PrimitiveType("I64")
U128 = PrimitiveType("U128")
I128 = PrimitiveType("I128")
U256 = PrimitiveType("U256")
I256 = PrimitiveType("I256")
F32 = PrimitiveType("F32")
F64 = PrimitiveType("F64")
STRING = PrimitiveType("String")

PRIMITIVES: dict[str, PrimitiveType] = {
    p.kind: p for p in (BOOL, U8, I8, U16, I16, U32, I32, U64, I64, U128, I128, U256, I256, F32, F64, STRING)
}


@dataclass(frozen=True, slots=True)
class ArrayType(AlgebraicType):
    """A homogeneous array; ``Array<U8>`` is the bytes type."""

    elem: AlgebraicType

    def __repr__(self) -> str:
        return f"Array<{self.elem!r}>"


@dataclass(frozen=True, slots=True)
class ProductTypeElement:
    name: str | None
    type: AlgebraicType


@dataclass(frozen=True, slots=True)
class ProductType(AlgebraicType):
    """An ordered record of (optionally named) fields."""

    elements: tuple[ProductTypeElement, ...] = ()

    @staticmethod
    def of(*fields: tuple[str | None, AlgebraicType] | AlgebraicType) -> ProductType:
        """Build from ``(name, type)`` pairs, or bare types for unnamed fields."""
        elements = []
        for f in fields:
            if isinstance(f, AlgebraicType):
                elements.append(ProductTypeElement(None, f))
            else:
                elements.append(ProductTypeElement(f[0], f[1]))
        return ProductType(tuple(elements))

    @property
    def names(self) -> tuple[str | None, ...]:
        return tuple(e.name for e in self.elements)

    @property
    def types(self) -> tuple[AlgebraicType, ...]:
        return tuple(e.type for e in self.elements)

    def index_of(self, name: str) -> int:
        for i, e in enumerate(self.elements):
            if e.name == name:
                return i
        raise KeyError(name)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{e.name}: {e.type!r}" if e.name is not None else repr(e.type) for e in self.elements
        )
        return f"({inner})"


@dataclass(frozen=True, slots=True)
class SumTypeVariant:
    name: str | None
    type: AlgebraicType = field(default_factory=ProductType)


@dataclass(frozen=True, slots=True)
class SumType(AlgebraicType):
    """A tagged union of ordered variants; a unit variant carries the empty product."""

    variants: tuple[SumTypeVariant, ...] = ()

    @staticmethod
    def of(*variants: tuple[str | None, AlgebraicType] | str) -> SumType:
        """Build from ``(name, type)`` pairs, or bare names for unit variants."""
        out = []
        for v in variants:
            if isinstance(v, str):
                out.append(SumTypeVariant(v, UNIT))
            else:
                out.append(SumTypeVariant(v[0], v[1]))
        return SumType(tuple(out))

    def tag_of(self, name: str) -> int:
        for i, v in enumerate(self.variants):
            if v.name == name:
                return i
        raise KeyError(name)

    def is_simple_enum(self) -> bool:
        """True when every variant is a unit variant (a C-like enum)."""
        return all(v.type == UNIT for v in self.variants)

    def __repr__(self) -> str:
        inner = " | ".join(f"{v.name}({v.type!r})" for v in self.variants)
        return f"[{inner}]"


@dataclass(frozen=True, slots=True)
class RefType(AlgebraicType):
    """A reference to ``Typespace.types[index]``; the only way to build recursive types."""

    index: int

    def __repr__(self) -> str:
        return f"&{self.index}"


UNIT = ProductType(())
BYTES = ArrayType(U8)


@dataclass(slots=True)
class Typespace:
    """The types that ``RefType`` indexes point into."""

    types: list[AlgebraicType] = field(default_factory=list)
    # Compiled codecs per type; valid forever because a typespace only ever grows.
    codec_cache: dict[AlgebraicType, Any] = field(default_factory=dict, repr=False, compare=False)

    def add(self, ty: AlgebraicType) -> RefType:
        self.types.append(ty)
        return RefType(len(self.types) - 1)

    def resolve(self, ty: AlgebraicType) -> AlgebraicType:
        """Follow refs until a non-ref type; raises ``KeyError`` on a dangling or cyclic-only ref."""
        seen = set()
        while isinstance(ty, RefType):
            if ty.index in seen or not 0 <= ty.index < len(self.types):
                raise KeyError(f"unresolvable type reference &{ty.index}")
            seen.add(ty.index)
            ty = self.types[ty.index]
        return ty

    def __getitem__(self, index: int) -> AlgebraicType:
        return self.types[index]

    def inline(self, ty: AlgebraicType, _stack: tuple[int, ...] = ()) -> AlgebraicType:
        """``ty`` with every ref replaced by its definition; ``RecursiveTypeError`` names the ref of a type that
        contains itself or that the typespace does not have."""
        if isinstance(ty, RefType):
            if ty.index in _stack or not 0 <= ty.index < len(self.types):
                raise RecursiveTypeError(ty.index)
            return self.inline(self.types[ty.index], (*_stack, ty.index))
        if isinstance(ty, ArrayType):
            return ArrayType(self.inline(ty.elem, _stack))
        if isinstance(ty, ProductType):
            return ProductType(
                tuple(ProductTypeElement(e.name, self.inline(e.type, _stack)) for e in ty.elements)
            )
        if isinstance(ty, SumType):
            return SumType(tuple(SumTypeVariant(v.name, self.inline(v.type, _stack)) for v in ty.variants))
        return ty

    def __len__(self) -> int:
        return len(self.types)


# ---- special types: ordinary products and sums recognised by their exact shape ---------------------------

IDENTITY_TAG = "__identity__"
CONNECTION_ID_TAG = "__connection_id__"
TIMESTAMP_TAG = "__timestamp_micros_since_unix_epoch__"
TIME_DURATION_TAG = "__time_duration_micros__"
UUID_TAG = "__uuid__"

IDENTITY = ProductType.of((IDENTITY_TAG, U256))
CONNECTION_ID = ProductType.of((CONNECTION_ID_TAG, U128))
TIMESTAMP = ProductType.of((TIMESTAMP_TAG, I64))
TIME_DURATION = ProductType.of((TIME_DURATION_TAG, I64))
UUID = ProductType.of((UUID_TAG, U128))
SCHEDULE_AT = SumType.of(("Interval", TIME_DURATION), ("Time", TIMESTAMP))

_SPECIAL_PRODUCTS = {
    IDENTITY: "identity",
    CONNECTION_ID: "connection_id",
    TIMESTAMP: "timestamp",
    TIME_DURATION: "time_duration",
    UUID: "uuid",
}


def option(ty: AlgebraicType) -> SumType:
    """``Option<ty>``: the sum ``some(ty) | none``."""
    return SumType.of(("some", ty), ("none", UNIT))


def result(ok: AlgebraicType, err: AlgebraicType) -> SumType:
    """``Result<ok, err>``: the sum ``ok(ok) | err(err)``."""
    return SumType.of(("ok", ok), ("err", err))


def special_kind(ty: AlgebraicType) -> str | None:
    """Name of the special type ``ty`` has the shape of, else None.

    One of ``identity``, ``connection_id``, ``timestamp``, ``time_duration``, ``uuid``, ``schedule_at``,
    ``option``, ``result``.
    """
    if isinstance(ty, ProductType):
        return _SPECIAL_PRODUCTS.get(ty)
    if isinstance(ty, SumType):
        if ty == SCHEDULE_AT:
            return "schedule_at"
        names = tuple(v.name for v in ty.variants)
        if names == ("some", "none") and ty.variants[1].type == UNIT:
            return "option"
        if names == ("ok", "err"):
            return "result"
    return None


def option_inner(ty: AlgebraicType) -> AlgebraicType | None:
    """The payload type of an ``Option`` shape, else None."""
    if special_kind(ty) == "option":
        assert isinstance(ty, SumType)
        return ty.variants[0].type
    return None


def walk(ty: AlgebraicType) -> Iterable[AlgebraicType]:
    """Every type nested in ``ty`` (not following refs), ``ty`` first."""
    stack: list[AlgebraicType] = [ty]
    while stack:
        t = stack.pop()
        yield t
        if isinstance(t, ArrayType):
            stack.append(t.elem)
        elif isinstance(t, ProductType):
            stack.extend(e.type for e in t.elements)
        elif isinstance(t, SumType):
            stack.extend(v.type for v in t.variants)


def refs_in(ty: AlgebraicType) -> Sequence[int]:
    return [t.index for t in walk(ty) if isinstance(t, RefType)]


def reads_as(old: AlgebraicType, new: AlgebraicType) -> bool:
    """Whether every value of type ``old`` reads as the same value of type ``new`` (same BSATN): equal types, or
    sum types that only gained variants at the end (SpacetimeDB's ``ensure_old_ty_upgradable_to_new`` in
    crates/schema/src/auto_migrate.rs), also inside records and arrays."""
    if old == new:
        return True
    if isinstance(old, SumType) and isinstance(new, SumType):
        return len(new.variants) >= len(old.variants) and all(
            a.name == b.name and reads_as(a.type, b.type)
            for a, b in zip(old.variants, new.variants, strict=False)
        )
    if isinstance(old, ProductType) and isinstance(new, ProductType):
        return len(old.elements) == len(new.elements) and all(
            a.name == b.name and reads_as(a.type, b.type)
            for a, b in zip(old.elements, new.elements, strict=True)
        )
    if isinstance(old, ArrayType) and isinstance(new, ArrayType):
        return reads_as(old.elem, new.elem)
    return False
