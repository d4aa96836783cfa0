"""Readable spellings of SATS types for messages and migration plans."""

from __future__ import annotations

from collections.abc import Callable

from spacetimedb.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    SumType,
    option_inner,
    special_kind,
)

_SPECIAL_NAMES = {
    "identity": "Identity",
    "connection_id": "ConnectionId",
    "timestamp": "Timestamp",
    "time_duration": "TimeDuration",
    "uuid": "Uuid",
    "schedule_at": "ScheduleAt",
}


def format_type(ty: AlgebraicType, ref_name: Callable[[int], str | None] | None = None) -> str:
    """``U32``, ``String``, ``Option<String>``, ``Array<I64>``, ``Identity``, ``(x: F64, y: F64)``,
    ``{Red | Green}``; refs by name when ``ref_name`` knows them."""
    if isinstance(ty, PrimitiveType):
        return ty.kind
    if isinstance(ty, RefType):
        name = ref_name(ty.index) if ref_name is not None else None
        return name if name is not None else f"&{ty.index}"
    if isinstance(ty, ArrayType):
        return f"Array<{format_type(ty.elem, ref_name)}>"
    kind = special_kind(ty)
    if kind in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[kind]
    inner = option_inner(ty)
    if inner is not None:
        return f"Option<{format_type(inner, ref_name)}>"
    if isinstance(ty, ProductType):
        fields = ", ".join(
            f"{e.name}: {format_type(e.type, ref_name)}" if e.name else format_type(e.type, ref_name)
            for e in ty.elements
        )
        return f"({fields})"
    if isinstance(ty, SumType):
        variants = " | ".join(
            (v.name or "?") if v.type == ProductType(()) else f"{v.name}({format_type(v.type, ref_name)})"
            for v in ty.variants
        )
        return "{" + variants + "}"
    return repr(ty)
