"""Indexes over the rows of one table.

Every index keeps a hash map from key to row id(s), so point lookups are one dict access. Ordered access
(ranges, prefixes of multi-column keys) uses a ``SortedList`` of the distinct keys, built the first time a
range is asked for and maintained incrementally after that; tables that only ever see point lookups never pay
for ordering.

Keys: the column value for a single-column index, a tuple of values for a multi-column one. Values whose Python
ordering differs from SATS ordering (options, sums, floats with NaN) are ordered through a compiled sort key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedKeyList, SortedList

from spacetimedb.sats import AlgebraicType, ArrayType, PrimitiveType, ProductType, SumType, special_kind

from .schema import IndexSchema

SortKey = Callable[[Any], Any]


class _Extreme:
    """Sorts above (or below) every value; used as the open end of prefix scans."""

    __slots__ = ("_sign",)

    def __init__(self, sign: int) -> None:
        self._sign = sign

    def __lt__(self, other: object) -> bool:
        return self._sign < 0 and other is not self

    def __gt__(self, other: object) -> bool:
        return self._sign > 0 and other is not self

    def __le__(self, other: object) -> bool:
        return self._sign < 0 or other is self

    def __ge__(self, other: object) -> bool:
        return self._sign > 0 or other is self

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)


MAX = _Extreme(1)
MIN = _Extreme(-1)


def sort_key_for(ty: AlgebraicType) -> SortKey | None:
    """A function mapping values of ``ty`` to keys whose Python order is SATS order; None when not needed."""
    if isinstance(ty, PrimitiveType):
        if ty.is_float:
            return _float_key
        return None
    kind = special_kind(ty)
    if kind in ("identity", "connection_id", "timestamp", "time_duration", "uuid"):
        return None
    if kind == "option":
        assert isinstance(ty, SumType)
        inner = sort_key_for(ty.variants[0].type) or _identity
        return lambda v: (1,) if v is None else (0, inner(v))
    if isinstance(ty, SumType):
        payload_keys = [sort_key_for(v.type) or _identity for v in ty.variants]
        return lambda v: (v[0], payload_keys[v[0]](v[1]))
    if isinstance(ty, ProductType):
        keys = [sort_key_for(e.type) for e in ty.elements]
        if all(k is None for k in keys):
            return None
        filled = [k or _identity for k in keys]
        return lambda v: tuple(k(x) for k, x in zip(filled, v, strict=True))
    if isinstance(ty, ArrayType):
        elem = sort_key_for(ty.elem)
        if elem is None:
            return None
        return lambda v: [elem(x) for x in v]
    return None


def _identity(v: Any) -> Any:
    return v


def _float_key(v: float) -> tuple[int, float]:
    # total order: NaN sorts after every number, as in SpacetimeDB's F64 ordering
    return (1, 0.0) if math.isnan(v) else (0, v)


def _key_sort_key(column_types: list[AlgebraicType]) -> SortKey | None:
    keys = [sort_key_for(t) for t in column_types]
    if all(k is None for k in keys):
        return None
    filled = [k or _identity for k in keys]
    if len(filled) == 1:
        return filled[0]

    def multi(key: Any) -> tuple[Any, ...]:
        return tuple(
            MIN if x is MIN else MAX if x is MAX else k(x) for k, x in zip(filled, key, strict=False)
        )

    return multi


class Index:
    """One index of a table. ``unique`` indexes map key -> row id; others key -> set of row ids."""

    __slots__ = ("_sort_key", "_sorted", "columns", "key_of", "map", "schema", "unique")

    def __init__(self, schema: IndexSchema, column_types: list[AlgebraicType]) -> None:
        self.schema = schema
        self.columns = schema.columns
        self.unique = schema.unique
        self.key_of: Callable[[tuple[Any, ...]], Any] = itemgetter(*schema.columns)
        self.map: dict[Any, Any] = {}
        self._sort_key = _key_sort_key(column_types)
        self._sorted: SortedList[Any] | None = None  # a SortedKeyList when keys need a sort key

    # -- maintenance ------------------------------------------------------------------------------------

    def add(self, rid: int, row: tuple[Any, ...]) -> None:
        key = self.key_of(row)
        if self.unique:
            self.map[key] = rid
            if self._sorted is not None:
                self._sorted.add(key)
            return
        rids = self.map.get(key)
        if rids is None:
            self.map[key] = {rid}
            if self._sorted is not None:
                self._sorted.add(key)
        else:
            rids.add(rid)

    def remove(self, rid: int, row: tuple[Any, ...]) -> None:
        key = self.key_of(row)
        if self.unique:
            del self.map[key]
            if self._sorted is not None:
                self._sorted.remove(key)
            return
        rids = self.map[key]
        rids.discard(rid)
        if not rids:
            del self.map[key]
            if self._sorted is not None:
                self._sorted.remove(key)

    def clear(self) -> None:
        self.map.clear()
        self._sorted = None

    # -- lookups ------------------------------------------------------------------------------------------

    def get_unique(self, key: Any) -> int | None:
        return self.map.get(key)

    def seek(self, key: Any) -> Iterable[int]:
        """Row ids whose key equals ``key``."""
        found = self.map.get(key)
        if found is None:
            return ()
        if self.unique:
            return (found,)
        rids: set[int] = found
        return rids

    def _ordered(self) -> SortedList[Any]:
        if self._sorted is None:
            if self._sort_key is None:
                self._sorted = SortedList(self.map.keys())
            else:
                self._sorted = SortedKeyList(self.map.keys(), key=self._sort_key)
        return self._sorted

    def range_keys(
        self, low: Any = None, high: Any = None, low_inclusive: bool = True, high_inclusive: bool = False
    ) -> Iterator[Any]:
        """Distinct keys in [low, high] (each end open when None, or inclusive/exclusive as asked), in order."""
        ordered = self._ordered()
        inclusive = (low_inclusive, high_inclusive)
        if self._sort_key is None:
            return ordered.irange(low, high, inclusive)
        assert isinstance(ordered, SortedKeyList)  # _ordered makes one whenever there is a sort key
        low_k = None if low is None else self._sort_key(low)
        high_k = None if high is None else self._sort_key(high)
        keys: Iterator[Any] = ordered.irange_key(low_k, high_k, inclusive)
        return keys

    def range(
        self, low: Any = None, high: Any = None, low_inclusive: bool = True, high_inclusive: bool = False
    ) -> list[int]:
        """Row ids whose keys fall in the range, in key order."""
        out: list[int] = []
        for key in self.range_keys(low, high, low_inclusive, high_inclusive):
            found = self.map[key]
            if self.unique:
                out.append(found)
            else:
                out.extend(found)
        return out

    def prefix(self, prefix: tuple[Any, ...]) -> list[int]:
        """Row ids of a multi-column index whose leading columns equal ``prefix``."""
        if len(prefix) == len(self.columns):
            return list(self.seek(prefix))
        return self.range(prefix + (MIN,), prefix + (MAX,), True, True)

    def prefix_range(
        self,
        prefix: tuple[Any, ...],
        low: Any,
        high: Any,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> list[int]:
        """Row ids whose leading columns equal ``prefix`` and whose next column lies between low and high."""
        rest = len(self.columns) - len(prefix) - 1
        if rest < 0:
            raise ValueError("prefix_range needs a prefix shorter than the index")
        if rest == 0:
            low_key = prefix + (MIN if low is None else low,)
            high_key = prefix + (MAX if high is None else high,)
            return self.range(low_key, high_key, low_inclusive or low is None, high_inclusive or high is None)
        low_fill = MIN if low is None or low_inclusive else MAX
        high_fill = MAX if high is None or high_inclusive else MIN
        low_key = prefix + (MIN if low is None else low,) + (low_fill,) * rest
        high_key = prefix + (MAX if high is None else high,) + (high_fill,) * rest
        return self.range(low_key, high_key, True, True)

    def __len__(self) -> int:
        return len(self.map)
