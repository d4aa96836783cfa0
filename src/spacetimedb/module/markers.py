"""What module authors write inside annotations and table options.

- The sized number aliases ``u8 .. u256``, ``i8 .. i256``, ``f32``, ``f64``: ``Annotated[int, <SATS type>]``, so
  type checkers see a plain ``int``/``float`` while the module layer reads the SATS type from the metadata.
- Column markers for ``Annotated[T, ...]``: ``PrimaryKey``, ``Unique``, ``AutoInc``, ``Index.btree`` / ``Index.hash``,
  ``Column(name=...)``.
- ``Index.btree("a", "b", name=...)`` for multi-column indexes in ``@table(indexes=[...])``.
- ``Range`` for index range scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from spacetimedb.sats import (
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    PrimitiveType,
)


@dataclass(frozen=True, slots=True)
class SatsScalar:
    """Metadata of a sized alias: the SATS primitive it stands for."""

    type: PrimitiveType
    alias: str

    def __repr__(self) -> str:
        return self.alias


u8 = Annotated[int, SatsScalar(U8, "u8")]
u16 = Annotated[int, SatsScalar(U16, "u16")]
u32 = Annotated[int, SatsScalar(U32, "u32")]
u64 = Annotated[int, SatsScalar(U64, "u64")]
u128 = Annotated[int, SatsScalar(U128, "u128")]
u256 = Annotated[int, SatsScalar(U256, "u256")]
i8 = Annotated[int, SatsScalar(I8, "i8")]
i16 = Annotated[int, SatsScalar(I16, "i16")]
i32 = Annotated[int, SatsScalar(I32, "i32")]
i64 = Annotated[int, SatsScalar(I64, "i64")]
i128 = Annotated[int, SatsScalar(I128, "i128")]
i256 = Annotated[int, SatsScalar(I256, "i256")]
f32 = Annotated[float, SatsScalar(F32, "f32")]
f64 = Annotated[float, SatsScalar(F64, "f64")]


class ColumnMarker:
    """A flag on a column: ``Annotated[u64, PrimaryKey, AutoInc]``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Column:
    """``Annotated[T, Column(name="canonical")]``: the column's canonical name, which SQL, clients and the
    database use, when it differs from the field's (its accessor in module code); SQL accepts both."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Column(name=...) takes a non-empty str, got {self.name!r}")


PrimaryKey = ColumnMarker("PrimaryKey")
Unique = ColumnMarker("Unique")
AutoInc = ColumnMarker("AutoInc")


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """An index as declared: its algorithm, its columns (by name; empty on a column marker) and accessor name."""

    algorithm: str
    columns: tuple[str, ...] = ()
    name: str | None = None


class IndexKind:
    """``Index.btree`` / ``Index.hash``: a column marker as is, or called to declare an index."""

    __slots__ = ("algorithm",)

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def __call__(self, *columns: str, name: str | None = None) -> IndexSpec:
        for column in columns:
            if not isinstance(column, str):
                raise TypeError(f"Index.{self.algorithm}() takes column names (str), got {column!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Index.{self.algorithm}(name=...) must be a str, got {name!r}")
        return IndexSpec(self.algorithm, tuple(columns), name)

    def __repr__(self) -> str:
        return f"Index.{self.algorithm}"


class Index:
    """Index declarations: ``Annotated[T, Index.btree]`` on a column, or ``Index.btree("a", "b", name="by_ab")``."""

    btree = IndexKind("btree")
    hash = IndexKind("hash")


@dataclass(frozen=True, slots=True)
class Range:
    """A range of index keys: ``lo`` (inclusive unless ``exclude_lo``) up to ``hi`` (exclusive unless
    ``inclusive``); ``None`` leaves that end open. ``Range(1, 10)`` is 1..9, ``Range(1, 10, inclusive=True)`` 1..10.
    """

    lo: Any = None
    hi: Any = None
    inclusive: bool = False
    exclude_lo: bool = False

    @property
    def bounds(self) -> tuple[Any, Any, bool, bool]:
        """``(low, high, low_inclusive, high_inclusive)`` as the datastore's range scans take them."""
        return self.lo, self.hi, not self.exclude_lo, self.inclusive
