"""The encodings of types themselves: ``AlgebraicType`` as a SATS value (BSATN and JSON).

SpacetimeDB describes types with types: ``AlgebraicType`` is a sum whose variants, in tag order, are
``Ref(u32)``, ``Sum(SumType)``, ``Product(ProductType)``, ``Array(AlgebraicType)``, then the primitives
``String, Bool, I8, U8, I16, U16, I32, U32, I64, U64, I128, U128, I256, U256, F32, F64``.
``st_column.col_type`` stores the BSATN of a column's type; module schemas serve the JSON form.
"""

from __future__ import annotations

from typing import Any

from . import bsatn, json
from .errors import DecodeError
from .types import (
    PRIMITIVES,
    STRING,
    U32,
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    ProductTypeElement,
    RefType,
    SumType,
    SumTypeVariant,
    Typespace,
    option,
)
from .values import SumValue

_PRIMITIVE_ORDER = (
    "String",
    "Bool",
    "I8",
    "U8",
    "I16",
    "U16",
    "I32",
    "U32",
    "I64",
    "U64",
    "I128",
    "U128",
    "I256",
    "U256",
    "F32",
    "F64",
)
_FIRST_PRIMITIVE_TAG = 4

# Fixed positions in META_TYPESPACE; other typespaces may embed these by copying its first entries.
ALGEBRAIC_TYPE_REF = RefType(0)
SUM_TYPE_REF = RefType(1)
PRODUCT_TYPE_REF = RefType(2)

META_TYPESPACE = Typespace(
    [
        SumType.of(
            ("Ref", U32),
            ("Sum", SUM_TYPE_REF),
            ("Product", PRODUCT_TYPE_REF),
            ("Array", ALGEBRAIC_TYPE_REF),
            *_PRIMITIVE_ORDER,
        ),
        ProductType.of(
            (
                "variants",
                ArrayType(ProductType.of(("name", option(STRING)), ("algebraic_type", ALGEBRAIC_TYPE_REF))),
            )
        ),
        ProductType.of(
            (
                "elements",
                ArrayType(ProductType.of(("name", option(STRING)), ("algebraic_type", ALGEBRAIC_TYPE_REF))),
            )
        ),
    ]
)


def type_to_value(ty: AlgebraicType) -> SumValue:
    """``ty`` as a canonical SATS value of the AlgebraicType sum."""
    if isinstance(ty, RefType):
        return SumValue(0, ty.index)
    if isinstance(ty, SumType):
        return SumValue(1, (tuple((v.name, type_to_value(v.type)) for v in ty.variants),))
    if isinstance(ty, ProductType):
        return SumValue(2, (tuple((e.name, type_to_value(e.type)) for e in ty.elements),))
    if isinstance(ty, ArrayType):
        return SumValue(3, type_to_value(ty.elem))
    if isinstance(ty, PrimitiveType):
        return SumValue(_FIRST_PRIMITIVE_TAG + _PRIMITIVE_ORDER.index(ty.kind), ())
    raise TypeError(f"not an AlgebraicType: {ty!r}")


def type_from_value(value: Any, depth: int = 0) -> AlgebraicType:
    """Inverse of ``type_to_value``; raises ``DecodeError`` on a malformed value."""
    if depth > 200:
        raise DecodeError("type nested too deeply")
    tag, payload = value
    if tag == 0:
        return RefType(payload)
    if tag == 1:
        (variants,) = payload
        return SumType(tuple(SumTypeVariant(n, type_from_value(t, depth + 1)) for n, t in variants))
    if tag == 2:
        (elements,) = payload
        return ProductType(tuple(ProductTypeElement(n, type_from_value(t, depth + 1)) for n, t in elements))
    if tag == 3:
        return ArrayType(type_from_value(payload, depth + 1))
    index = tag - _FIRST_PRIMITIVE_TAG
    if 0 <= index < len(_PRIMITIVE_ORDER):
        return PRIMITIVES[_PRIMITIVE_ORDER[index]]
    raise DecodeError(f"unknown AlgebraicType tag {tag}")


def type_to_bsatn(ty: AlgebraicType) -> bytes:
    return bsatn.encode(ALGEBRAIC_TYPE_REF, type_to_value(ty), META_TYPESPACE)


def type_from_bsatn(data: bytes) -> AlgebraicType:
    return type_from_value(bsatn.decode(ALGEBRAIC_TYPE_REF, data, META_TYPESPACE))


def type_to_json(ty: AlgebraicType) -> Any:
    return json.to_json(ALGEBRAIC_TYPE_REF, type_to_value(ty), META_TYPESPACE)


def type_from_json(data: Any) -> AlgebraicType:
    return type_from_value(json.from_json(ALGEBRAIC_TYPE_REF, data, META_TYPESPACE))
