"""``ctx.db.<table>.<index>``: the handles of a table's indexes, which a reducer's reads and updates go through.

Compiled with the transaction hot path (``spacetimedb.native``); the table handles stay in ``runtime``, whose
classes are made per table at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from spacetimedb.datastore import MutTx
from spacetimedb.sats import EncodeError, PrimitiveType, check_value

from .errors import ColumnValueError
from .markers import Range
from .moduledef import IndexDef, TableDef
from .slots import TxSlot

Row = tuple[Any, ...]


# A reducer's reads and writes go to a ``MutTx``: narrowed to it, the compiled call is direct, where a call on the
# slot's ``Any`` looks the method up by name. Anything else (a view's read-only transaction, the placeholder that
# says there is none) is called generically.


def _find(tx: Any, table_id: int, index_id: int, key: Any) -> Row | None:
    if type(tx) is MutTx:
        return tx.find(table_id, index_id, key)
    return tx.find(table_id, index_id, key)  # type: ignore[no-any-return]  # not a MutTx: typed Any


def _update(tx: Any, table_id: int, index_id: int, row: Row) -> None:
    if type(tx) is MutTx:
        tx.update(table_id, index_id, row)
    else:
        tx.update(table_id, index_id, row)


# ---- errors naming the table, column and value -----------------------------------------------------------------


def wrong_class(table: TableDef, row: Any) -> TypeError:
    return TypeError(
        f"table `{table.name}` stores {table.row_class.__name__} rows, got {type(row).__name__} {row!r}"
    )


def row_error(table: TableDef, row: Any, exc: BaseException) -> Exception:
    """Explain why ``row`` (a user record, or its canonical tuple) does not fit ``table``."""
    for column, convert in zip(table.columns, table.column_to_canonical, strict=True):
        value = row[column.pos] if isinstance(row, tuple) else getattr(row, column.name, None)
        try:
            canonical = convert(value) if convert is not None and not isinstance(row, tuple) else value
            check_value(column.type, canonical)
        except (EncodeError, ValueError, TypeError, AttributeError, KeyError) as problem:
            return ColumnValueError(table.name, column.name, value, str(problem))
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


class IndexHandle:
    """``ctx.db.<table>.<accessor>`` for a non-unique index: ``filter`` and ``delete`` by value, prefix or range."""

    __slots__ = (
        "_def",
        "_from_tuple",
        "_index_id",
        "_integer_columns",
        "_keys",
        "_ranged",
        "_slot",
        "_table",
        "_table_id",
    )

    def __init__(self, table: TableDef, index: IndexDef, slot: TxSlot) -> None:
        self._table = table
        self._def = index
        self._slot = slot
        self._table_id = -1
        self._index_id = -1
        self._from_tuple: Callable[[Row], Any] = table.row_class.__stdb_record__.from_tuple  # type: ignore[attr-defined]  # set on record classes by @table (records.py)
        # per index column: user key value -> canonical (None: as is)
        self._keys = tuple(table.column_to_canonical[c] for c in index.columns)
        self._ranged = index.algorithm == "btree"
        self._integer_columns = tuple(
            isinstance(t, PrimitiveType) and t.is_integer
            for t in (table.columns[c].type for c in index.columns)
        )

    def _key(self, value: Any, part: int) -> Any:
        convert = self._keys[part]
        return value if convert is None else convert(value)

    def _bounds(self, value: Any, part: int) -> tuple[Any, Any, bool, bool] | None:
        """(low, high, low_inclusive, high_inclusive) when ``value`` is a range, else None."""
        if isinstance(value, Range):
            lo, hi, lo_inc, hi_inc = value.bounds
        elif isinstance(value, range):
            if not self._integer_columns[part]:
                raise ValueError(
                    f"index `{self._def.accessor_name}`: a Python range filters integer columns only; "
                    "use spacetimedb.Range(lo, hi)"
                )
            if value.step != 1:
                raise ValueError(
                    f"index `{self._def.accessor_name}`: a range filter needs step 1, got {value!r}"
                )
            lo, hi, lo_inc, hi_inc = value.start, value.stop, True, False
        else:
            return None
        if not self._ranged:
            raise ValueError(f"index `{self._def.accessor_name}` is a hash index: it cannot filter by range")
        return self._bound(lo, part), self._bound(hi, part), lo_inc, hi_inc

    def _bound(self, value: Any, part: int) -> Any:
        if value is None:
            return None
        key = self._key(value, part)
        column = self._table.columns[self._def.columns[part]]
        try:
            check_value(column.type, key)
        except EncodeError as exc:
            # ordering a key of the wrong type against the index would fail obscurely, so say it here
            raise ValueError(
                f"index `{self._def.accessor_name}`: range bound {value!r} does not fit column "
                f"`{column.name}`: {exc}"
            ) from None
        return key

    def _matching_rows(self, value: Any) -> list[Row]:
        tx = self._slot.tx
        width = len(self._def.columns)
        if width == 1:
            bounds = self._bounds(value, 0)
            if bounds is None:
                return tx.seek(self._table_id, self._index_id, self._key(value, 0))  # type: ignore[no-any-return]  # the slot's transaction is typed Any
            return tx.range(self._table_id, self._index_id, *bounds)  # type: ignore[no-any-return]  # the slot's transaction is typed Any
        parts = value if isinstance(value, tuple) else (value,)
        if not 1 <= len(parts) <= width:
            raise ValueError(
                f"index `{self._def.accessor_name}` has {width} columns; "
                f"filter by a tuple of 1 to {width} values, got {value!r}"
            )
        *head, last = parts
        prefix = tuple(self._key(v, i) for i, v in enumerate(head))
        bounds = self._bounds(last, len(head))
        if bounds is not None:
            return tx.prefix_range(self._table_id, self._index_id, prefix, *bounds)  # type: ignore[no-any-return]  # the slot's transaction is typed Any
        key = (*prefix, self._key(last, len(head)))
        if len(key) == width:
            return tx.seek(self._table_id, self._index_id, key)  # type: ignore[no-any-return]  # the slot's transaction is typed Any
        if not self._ranged:
            raise ValueError(
                f"index `{self._def.accessor_name}` is a hash index: it cannot filter by a prefix"
            )
        return tx.prefix(self._table_id, self._index_id, key)  # type: ignore[no-any-return]  # the slot's transaction is typed Any

    def filter(self, value: Any) -> Iterator[Any]:
        """Rows whose key equals ``value``, or lies in a ``range`` / ``Range``; on a multi-column index, a tuple
        prefix of the key, optionally ending in a range."""
        return map(self._from_tuple, self._matching_rows(value))

    def delete(self, value: Any) -> int:
        """Delete the rows ``filter(value)`` would return; returns how many."""
        tx = self._slot.tx
        rows = self._matching_rows(value)
        table_id = self._table_id
        for row in rows:
            tx.delete(table_id, row)
        return len(rows)

    def __repr__(self) -> str:
        return f"<index {self._def.name}>"


class UniqueIndexHandle(IndexHandle):
    """``ctx.db.<table>.<column>`` for a unique column: ``find``, ``update``, ``delete`` by value (and ``filter``)."""

    __slots__ = ("_row_class", "_to_tuple")

    def __init__(self, table: TableDef, index: IndexDef, slot: TxSlot) -> None:
        super().__init__(table, index, slot)
        self._to_tuple: Callable[[Any], Row] = table.row_class.__stdb_record__.to_tuple  # type: ignore[attr-defined]  # set on record classes by @table (records.py)
        self._row_class = table.row_class

    def find(self, value: Any) -> Any:
        """The row whose key is ``value``, or None."""
        convert = self._keys[0]
        row = _find(
            self._slot.tx, self._table_id, self._index_id, value if convert is None else convert(value)
        )
        return None if row is None else self._from_tuple(row)

    def update(self, row: Any) -> Any:
        """Replace the row that has ``row``'s key with ``row``; raises if there is none. Returns ``row``."""
        if type(row) is not self._row_class:
            raise wrong_class(self._table, row)
        try:
            values = self._to_tuple(row)
        except Exception as exc:
            raise row_error(self._table, row, exc) from None
        try:
            _update(self._slot.tx, self._table_id, self._index_id, values)
        except EncodeError as exc:
            raise row_error(self._table, values, exc) from None
        return row

    def delete(self, value: Any) -> bool:
        """Delete the row whose key is ``value``; False if there is none."""
        if isinstance(value, (Range, range)):
            return super().delete(value) > 0
        convert = self._keys[0]
        key = value if convert is None else convert(value)
        return self._slot.tx.delete_by_key(self._table_id, self._index_id, key) > 0  # type: ignore[no-any-return]  # the slot's transaction is typed Any
