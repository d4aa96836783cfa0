"""Hypothesis strategies for SATS types and values, shared by the tests of every layer."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    AlgebraicType,
    ArrayType,
    ConnectionId,
    Identity,
    PrimitiveType,
    ProductType,
    ScheduleAt,
    Some,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    option,
    special_kind,
)
from spacetimedb.sats.types import PRIMITIVES

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)

primitive_types = st.sampled_from(sorted(PRIMITIVES.values(), key=lambda t: t.kind))
special_types = st.sampled_from([IDENTITY, CONNECTION_ID, TIMESTAMP, TIME_DURATION, SCHEDULE_AT, BYTES])


def _products(children: st.SearchStrategy[AlgebraicType]) -> st.SearchStrategy[AlgebraicType]:
    return st.lists(st.tuples(names, children), max_size=5, unique_by=lambda p: p[0]).map(
        lambda fields: ProductType.of(*fields)
    )


def _sums(children: st.SearchStrategy[AlgebraicType]) -> st.SearchStrategy[AlgebraicType]:
    return st.lists(st.tuples(names, children), min_size=1, max_size=5, unique_by=lambda p: p[0]).map(
        lambda variants: SumType.of(*variants)
    )


types: st.SearchStrategy[AlgebraicType] = st.recursive(
    st.one_of(primitive_types, special_types),
    lambda children: st.one_of(
        children.map(ArrayType),
        children.map(option),
        _products(children),
        _sums(children),
    ),
    max_leaves=12,
)

# Row types as tables use them: a product of named columns.
row_types = _products(types).filter(lambda t: len(t.elements) > 0)


def _int_range(ty: PrimitiveType) -> st.SearchStrategy[int]:
    lo, hi = ty.integer_range()
    return st.integers(min_value=lo, max_value=hi)


def _f32s() -> st.SearchStrategy[float]:
    return st.floats(width=32, allow_nan=False)


def values_of(ty: AlgebraicType) -> st.SearchStrategy[Any]:
    """Canonical Python values of ``ty`` (no NaN, so that values compare equal to themselves)."""
    kind = special_kind(ty)
    if kind == "identity":
        return st.integers(0, (1 << 256) - 1).map(Identity)
    if kind == "connection_id":
        return st.integers(0, (1 << 128) - 1).map(ConnectionId)
    if kind == "timestamp":
        return st.integers(-(1 << 63), (1 << 63) - 1).map(Timestamp)
    if kind == "time_duration":
        return st.integers(-(1 << 63), (1 << 63) - 1).map(TimeDuration)
    if kind == "schedule_at":
        return st.one_of(
            values_of(TIME_DURATION).map(ScheduleAt.interval), values_of(TIMESTAMP).map(ScheduleAt.time)
        )
    if kind == "option":
        assert isinstance(ty, SumType)
        inner = ty.variants[0].type
        inner_values = values_of(inner)
        if special_kind(inner) == "option":
            inner_values = inner_values.map(Some)
        return st.one_of(st.none(), inner_values)
    if isinstance(ty, PrimitiveType):
        if ty == BOOL:
            return st.booleans()
        if ty == STRING:
            return st.text(max_size=20)
        if ty == F32:
            return _f32s()
        if ty == F64:
            return st.floats(allow_nan=False)
        return _int_range(ty)
    if isinstance(ty, ArrayType):
        if ty == BYTES:
            return st.binary(max_size=20)
        return st.lists(values_of(ty.elem), max_size=4).map(tuple)
    if isinstance(ty, ProductType):
        return st.tuples(*(values_of(e.type) for e in ty.elements))
    if isinstance(ty, SumType):
        return st.one_of(
            *(values_of(v.type).map(lambda p, tag=tag: SumValue(tag, p)) for tag, v in enumerate(ty.variants))
        )
    raise AssertionError(f"no strategy for {ty!r}")


def typed_values(
    strategy: st.SearchStrategy[AlgebraicType] = types,
) -> st.SearchStrategy[tuple[AlgebraicType, Any]]:
    return strategy.flatmap(lambda ty: st.tuples(st.just(ty), values_of(ty)))


def same_value(a: Any, b: Any) -> bool:
    """Equality that treats -0.0 and 0.0 as different, as BSATN does."""
    if isinstance(a, float) and isinstance(b, float):
        return math.copysign(1, a) == math.copysign(1, b) and a == b
    return a == b
