"""One table's rows and indexes, and the sequences that fill its auto-increment columns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from spacetimedb.sats import PrimitiveType, codec

from .errors import SequenceExhaustedError, UniqueConstraintViolation
from .index import Index
from .schema import SEQUENCE_ALLOCATION_STEP, IndexSchema, SequenceSchema, TableSchema


class Sequence:
    """In-memory state of an auto-increment sequence.

    ``value`` is the next value to hand out; ``allocated`` is the bound persisted in ``st_sequence``. Values are
    handed out freely below the bound; reaching it persists a new bound (``persist``) in the same transaction
    as the row that needed it. After a restart ``value = allocated``, so no value is ever issued twice.
    """

    __slots__ = ("allocated", "increment", "max_value", "min_value", "schema", "value")

    def __init__(self, schema: SequenceSchema) -> None:
        self.schema = schema
        self.increment = schema.increment or 1
        self.min_value = schema.min_value
        self.max_value = schema.max_value
        self.allocated = schema.allocated
        self.value = schema.allocated if schema.allocated else schema.start

    def next_value(self, persist: Callable[[Sequence, int], None]) -> int:
        value = self.value
        if not self.min_value <= value <= self.max_value:
            raise SequenceExhaustedError(f"sequence `{self.schema.name}` is exhausted at {value}")
        if (self.increment > 0 and value >= self.allocated) or (
            self.increment < 0 and value <= self.allocated
        ):
            bound = value + self.increment * SEQUENCE_ALLOCATION_STEP
            bound = max(self.min_value, min(self.max_value + 1, bound))
            persist(self, bound)
            self.allocated = bound
        self.value = value + self.increment
        return value


Row = tuple[Any, ...]

# ``RowStore``'s list stays within twice the rows in it, plus this many slots (see the class)
_SLACK: Final = 32
# the smallest list a ``RowStore`` makes, and the size below which it does not shrink
_MIN_SLOTS: Final = 16
_SHRINK_FROM: Final = 256


class RowStore:
    """A table's rows by row id: the ids 0 .. ``len(slots) - 1`` index a list, any other id a dict (``spill``).

    Most row ids are small and dense: counted from 1, or an integer primary key (see ``Table``), such as an
    ``auto_inc`` id. A list reaches such a row in one step, where a dict hashes the id, reads its index and its
    entry, and compares the key object it stored: in a table too large for the CPU's caches each of those reads
    is a miss, which made a keynote transfer's two finds a fifth of its time.

    The list keeps to twice the rows in it, plus ``_SLACK``: it grows (at least doubling) to take an id only
    within that bound, and once fewer than a quarter of its slots hold rows it moves those beyond the bound into
    the dict and shrinks. Ids beyond it (sparse or negative keys, or dense ones that came in a scattered order)
    live in the dict, and when the list grows, the ones it now covers move into it. An id is in the list's range
    or in the dict, never both; each growth or shrink costs time in proportion to the rows it could move, and
    the doubling and the quarter keep them rare. Iteration goes through the list in id order, then the dict in
    insertion order.
    """

    __slots__ = ("_listed", "slots", "spill")

    def __init__(self) -> None:
        self.slots: list[Row | None] = []
        self.spill: dict[int, Row] = {}
        self._listed = 0  # rows in ``slots``

    def get(self, rid: int) -> Row | None:
        slots = self.slots
        if 0 <= rid < len(slots):
            return slots[rid]
        return self.spill.get(rid)

    def __getitem__(self, rid: int) -> Row:
        row = self.get(rid)
        if row is None:
            raise KeyError(rid)
        return row

    def __contains__(self, rid: int) -> bool:
        return self.get(rid) is not None

    def __setitem__(self, rid: int, row: Row) -> None:
        slots = self.slots
        if not 0 <= rid < len(slots) and not self._grow_to(rid):
            self.spill[rid] = row
            return
        if slots[rid] is None:
            self._listed += 1
        slots[rid] = row

    def _grow_to(self, rid: int) -> bool:
        """Grow the list to cover ``rid`` if it stays within bounds (see the class); whether it now does."""
        slots = self.slots
        size = len(slots)
        new_size = max(rid + 1, 2 * size, _MIN_SLOTS)
        if rid < 0 or new_size > 2 * (self._listed + 1) + _SLACK:
            return False
        slots.extend([None] * (new_size - size))
        spill = self.spill
        if spill:
            for moved in [r for r in spill if size <= r < new_size]:
                slots[moved] = spill.pop(moved)
                self._listed += 1
        return True

    def _shrink(self) -> None:
        """Move the rows beyond twice the listed ones (plus ``_SLACK``) into the dict and cut the list there."""
        slots = self.slots
        keep = 2 * self._listed + _SLACK
        spill = self.spill
        for rid in range(keep, len(slots)):
            row = slots[rid]
            if row is not None:
                spill[rid] = row
                self._listed -= 1
        del slots[keep:]

    def pop(self, rid: int) -> Row:
        slots = self.slots
        if 0 <= rid < len(slots):
            row = slots[rid]
            if row is None:
                raise KeyError(rid)
            slots[rid] = None
            self._listed -= 1
            if self._listed * 4 < len(slots) and len(slots) > _SHRINK_FROM:
                self._shrink()
        else:
            row = self.spill.pop(rid)
        return row

    def clear(self) -> None:
        self.slots = []
        self.spill.clear()
        self._listed = 0

    def __len__(self) -> int:
        return self._listed + len(self.spill)

    def __iter__(self) -> Iterator[int]:
        return self.keys()

    def keys(self) -> Iterator[int]:
        for rid, row in enumerate(self.slots):
            if row is not None:
                yield rid
        yield from self.spill

    def values(self) -> Iterator[Row]:
        for row in self.slots:
            if row is not None:
                yield row
        yield from self.spill.values()

    def items(self) -> Iterator[tuple[int, Row]]:
        for rid, row in enumerate(self.slots):
            if row is not None:
                yield rid, row
        yield from self.spill.items()


class Table:
    """Rows by row id, the table's indexes, and the set-semantics map for tables without a unique index.

    A row id is an int, unique in the table and fixed for as long as the row is there. Where the table has an
    integer primary key, a new row takes its key as its row id when no other row has that id (``rid_for``), so
    that ``rows.get(key)`` usually finds the row by its key in one step (a slot of ``RowStore``'s list) instead
    of two lookups (the key's index, then the rows). That is only a shortcut: ``row_by_key`` checks the row it
    finds, and the primary key's index stays the authority (a row whose key an update changed keeps its id; a
    key whose id was taken gets another).
    """

    __slots__ = (
        "encode",
        "encode_unchecked",
        "index_by_id",
        "indexes",
        "key_rid_column",
        "key_rid_index",
        "name",
        "next_rid",
        "pointer_map",
        "rows",
        "schema",
        "sequences",
        "table_id",
        "unique_indexes",
    )

    def __init__(self, schema: TableSchema) -> None:
        self.schema = schema
        self.table_id = schema.table_id
        self.name = schema.name
        self.rows = RowStore()
        self.next_rid = 1
        row_codec = codec(schema.row_type)
        self.encode: Callable[[Any], bytes] = row_codec.encode
        # for rows already in the table (they were encoded once on their way in) and for a first attempt on
        # the hot path, which falls back to ``encode`` for its error message
        self.encode_unchecked: Callable[[Any], bytes] = row_codec.encode_unchecked
        self.indexes: list[Index] = []
        self.index_by_id: dict[int, Index] = {}
        self.unique_indexes: list[Index] = []
        self.pointer_map: dict[tuple[Any, ...], int] | None = None
        # (column position, sequence) for each auto-increment column
        self.sequences: list[tuple[int, Sequence]] = []
        # the integer primary key whose values new rows take as their ids where they can (see the class)
        self.key_rid_column: int | None = None
        self.key_rid_index: Index | None = None
        self._install_indexes(schema.indexes)

    # -- schema -----------------------------------------------------------------------------------------------

    def _make_index(self, index_schema: IndexSchema) -> Index:
        types = [self.schema.columns[c].type for c in index_schema.columns]
        index = Index(index_schema, types)
        for rid, row in self.rows.items():
            if index.unique and index.key_of(row) in index.map:
                raise UniqueConstraintViolation(
                    self.name, self.column_names(index.columns), index.key_of(row)
                )
            index.add(rid, row)
        return index

    def _install_indexes(self, schemas: tuple[IndexSchema, ...]) -> None:
        existing = {i.schema: i for i in self.indexes}
        indexes = [existing.get(s) or self._make_index(s) for s in schemas]
        self.indexes = indexes
        self.index_by_id = {i.schema.index_id: i for i in indexes}
        self.unique_indexes = [i for i in indexes if i.unique]
        self._choose_key_rids()
        if self.unique_indexes:
            self.pointer_map = None
        elif self.pointer_map is None:
            self.pointer_map = {row: rid for rid, row in self.rows.items()}

    def _choose_key_rids(self) -> None:
        pk = self.schema.primary_key
        self.key_rid_column = self.key_rid_index = None
        if pk is None:
            return
        column_type = self.schema.columns[pk].type
        if not (isinstance(column_type, PrimitiveType) and column_type.is_integer):
            return  # (other keys hash by content, or randomly per process: row ids stay counted ints)
        for index in self.unique_indexes:
            if index.columns == (pk,):
                self.key_rid_column, self.key_rid_index = pk, index
                return

    def apply_schema(self, schema: TableSchema) -> None:
        """Adopt a changed schema of the same table (indexes, access, constraints, column types whose encoding
        of the stored rows is unchanged, such as a sum type with variants added at the end)."""
        if len(schema.columns) != len(self.schema.columns):
            raise ValueError(f"the columns of table `{self.name}` cannot be added or removed in place")
        if schema.row_type != self.schema.row_type:
            self.encode = codec(schema.row_type).encode
        self.schema = schema
        self.name = schema.name
        self._install_indexes(schema.indexes)

    def column_names(self, columns: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(self.schema.columns[c].name for c in columns)

    # -- raw row storage: no transaction bookkeeping ------------------------------------------------------------

    def find_same(self, row: tuple[Any, ...]) -> int | None:
        """Row id of a row equal to ``row``; raises UniqueConstraintViolation if a different row has one of its
        unique keys."""
        for index in self.unique_indexes:
            key = index.key_of(row)
            rid: int | None = index.map.get(key)
            if rid is not None:
                if self.rows[rid] == row:
                    return rid
                raise UniqueConstraintViolation(self.name, self.column_names(index.columns), key)
        if self.pointer_map is not None:
            return self.pointer_map.get(row)
        return None

    def locate(self, row: tuple[Any, ...]) -> int | None:
        """Row id of a row equal to ``row``, if present."""
        if self.unique_indexes:
            index = self.unique_indexes[0]
            rid: int | None = index.map.get(index.key_of(row))
            if rid is not None and self.rows[rid] == row:
                return rid
            return None
        assert self.pointer_map is not None
        return self.pointer_map.get(row)

    def add(self, rid: int, row: tuple[Any, ...]) -> None:
        self.rows[rid] = row
        for index in self.indexes:
            index.add(rid, row)
        if self.pointer_map is not None:
            self.pointer_map[row] = rid

    def new_rid(self) -> int:
        rid = self.next_rid
        rows = self.rows
        while rid in rows:  # (a row may hold this id as its key)
            rid += 1
        self.next_rid = rid + 1
        return rid

    def rid_for(self, row: tuple[Any, ...]) -> int:
        """An id for ``row``, about to be added: its primary key where that is a free id, else a new one."""
        column = self.key_rid_column
        if column is not None:
            key: int = row[column]
            if key not in self.rows:
                return key
        return self.new_rid()

    def row_by_key(self, index: Index, key: Any) -> tuple[Any, ...] | None:
        """The row whose key in the unique ``index`` is ``key``, or None."""
        column = self.key_rid_column
        if index is self.key_rid_index and column is not None:
            row = self.rows.get(key)
            if row is not None and row[column] == key:
                return row
        rid: int | None = index.map.get(key)
        return None if rid is None else self.rows[rid]

    def rid_of(self, index: Index, key: Any, row: tuple[Any, ...]) -> int:
        """The id of ``row``, which ``row_by_key(index, key)`` just returned."""
        if index is self.key_rid_index and self.rows.get(key) is row:
            return key  # type: ignore[no-any-return]  # an integer primary key: the id it is stored under
        rid: int = index.map[key]
        return rid

    def remove(self, rid: int) -> tuple[Any, ...]:
        row = self.rows.pop(rid)
        for index in self.indexes:
            index.remove(rid, row)
        if self.pointer_map is not None:
            del self.pointer_map[row]
        return row

    def replace(
        self, rid: int, old: tuple[Any, ...], new: tuple[Any, ...], same_key: Index | None = None
    ) -> None:
        """Put ``new`` where ``old`` was, touching only the indexes whose key changed (``same_key``: one whose
        key the caller knows is the same in both, such as the unique index it found ``old`` by)."""
        self.rows[rid] = new
        for index in self.indexes:
            if index is same_key:
                continue
            key_of = index.key_of
            if key_of(old) != key_of(new):
                index.remove(rid, old)
                index.add(rid, new)
        if self.pointer_map is not None:
            del self.pointer_map[old]
            self.pointer_map[new] = rid

    def clear(self) -> None:
        self.rows.clear()
        for index in self.indexes:
            index.clear()
        if self.pointer_map is not None:
            self.pointer_map.clear()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows.values())

    def __len__(self) -> int:
        return len(self.rows)
