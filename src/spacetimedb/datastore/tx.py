"""Transactions over the datastore.

A mutable transaction writes straight into the tables (it holds the writer lock, so nobody else can look) and
remembers, per table, which row ids it inserted or replaced (``inserted``: rid -> BSATN of the row now there)
and which committed rows it removed (``deleted``: rid -> the original row). That is enough to roll back
(remove what is in ``inserted``, put back what is in ``deleted``) and to produce the transaction's net
changes at commit. Read-only transactions hold the reader lock and read the tables directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .errors import (
    IndexNotUniqueError,
    NoSuchIndexError,
    NoSuchRowError,
    NoSuchTableError,
    SchemaError,
    TransactionClosedError,
    UniqueConstraintViolation,
)
from .index import Index
from .schema import (
    SCHEMA_TABLE_IDS,
    ST_COLUMN_ID,
    ST_CONSTRAINT_ID,
    ST_INDEX_ID,
    ST_ROW_LEVEL_SECURITY_ID,
    ST_SCHEDULED_ID,
    ST_SEQUENCE_ID,
    ST_TABLE_ID,
    IndexDef,
    SequenceDef,
    TableDef,
    TableSchema,
    generated_constraint_name,
    generated_index_name,
    generated_schedule_name,
    generated_sequence_name,
    st_column_row,
    st_constraint_row,
    st_index_row,
    st_scheduled_row,
    st_sequence_row,
    st_table_row,
)
from .table import Row, Sequence, Table

if TYPE_CHECKING:
    from spacetimedb.sats import AlgebraicType

    from .datastore import Datastore


# Every schema system table's rows carry the id of the table they describe, in this column.
TABLE_ID_COLUMN = {
    ST_TABLE_ID: 0,
    ST_COLUMN_ID: 0,
    ST_INDEX_ID: 1,
    ST_SEQUENCE_ID: 2,
    ST_CONSTRAINT_ID: 2,
    ST_SCHEDULED_ID: 1,
}


@dataclass(slots=True, init=False)
class TableChanges:
    """Net changes of one table in one committed transaction; rows and their BSATN, aligned."""

    table_id: int
    table_name: str
    schema: TableSchema
    inserts: list[Row]
    deletes: list[Row]
    insert_bytes: list[bytes]
    delete_bytes: list[bytes]

    # (``init=False`` and an ``__init__`` of its own: mypyc compiles it, the dataclass-generated one runs as
    # interpreted code, on every call)
    def __init__(
        self,
        table_id: int,
        table_name: str,
        schema: TableSchema,
        inserts: list[Row],
        deletes: list[Row],
        insert_bytes: list[bytes],
        delete_bytes: list[bytes],
    ) -> None:
        self.table_id = table_id
        self.table_name = table_name
        self.schema = schema
        self.inserts = inserts
        self.deletes = deletes
        self.insert_bytes = insert_bytes
        self.delete_bytes = delete_bytes


@dataclass(slots=True, init=False)
class TxData:
    """What a committed transaction changed, ordered by table id. Read-only: one object may be shared."""

    tables: tuple[TableChanges, ...]
    schema_changed: bool

    # (an ``__init__`` of its own, as ``TableChanges``)
    def __init__(self, tables: tuple[TableChanges, ...] = (), schema_changed: bool = False) -> None:
        self.tables = tables
        self.schema_changed = schema_changed

    def is_empty(self) -> bool:
        return not self.tables

    def for_table(self, table_id: int) -> TableChanges | None:
        for changes in self.tables:
            if changes.table_id == table_id:
                return changes
        return None


EMPTY_TX_DATA: Final = TxData()
# (compiled, a ``Final`` global is read from a C static, any other from the module's dict: per-call reads)
_SCHEMA_TABLE_IDS: Final = SCHEMA_TABLE_IDS


class _Changes:
    __slots__ = ("deleted", "inserted", "reinserted", "table")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.inserted: dict[int, bytes] = {}
        self.deleted: dict[int, Row] = {}
        # a row was inserted after rows were deleted: it may be one of them put back, which nets to nothing.
        # (Only an insert can do that: an update keeps the row's key in a unique index, so its new value
        # cannot equal another row deleted before.)
        self.reinserted = False


class _Reader:
    """Read operations shared by read-only and mutable transactions."""

    __slots__ = ("_closed", "_ds", "_last_index", "_last_index_id", "_last_table_id", "_tables")

    def __init__(self, datastore: Datastore) -> None:
        self._ds = datastore
        # the datastore's dict of tables, which it changes in place and never replaces: one attribute read of a
        # compiled class, where ``_ds.tables`` (an interpreted one) is a generic lookup on every row access
        self._tables = datastore.tables
        self._closed = False
        self._forget_last_index()

    def _forget_last_index(self) -> None:
        """Forget the unique index ``_unique_index`` found last (the schema changed, or nothing was found yet)."""
        self._last_table_id = self._last_index_id = -1
        self._last_index: tuple[Table, Index] | None = None

    def _check_open(self) -> None:
        if self._closed:
            raise TransactionClosedError("the transaction is already finished")

    # -- schema ---------------------------------------------------------------------------------------------

    def table(self, table_id: int) -> Table:
        table = self._tables.get(table_id)
        if table is None:
            raise NoSuchTableError(table_id)
        return table

    def table_id(self, name: str) -> int | None:
        return self._ds.table_names.get(name)

    def table_by_name(self, name: str) -> Table:
        table_id = self._ds.table_names.get(name)
        if table_id is None:
            raise NoSuchTableError(name)
        return self._tables[table_id]

    def schema(self, table_id: int) -> TableSchema:
        return self.table(table_id).schema

    def schemas(self) -> list[TableSchema]:
        return [t.schema for t in sorted(self._tables.values(), key=lambda t: t.table_id)]

    # -- rows -------------------------------------------------------------------------------------------------

    def scan(self, table_id: int) -> Iterator[Row]:
        return iter(self.table(table_id).rows.values())

    def count(self, table_id: int) -> int:
        return len(self.table(table_id).rows)

    def _index(self, table: Table, index_id: int) -> Index:
        index = table.index_by_id.get(index_id)
        if index is None:
            raise NoSuchIndexError(index_id)
        return index

    def seek(self, table_id: int, index_id: int, key: Any) -> list[Row]:
        """Rows whose indexed columns equal ``key`` (a value, or a tuple for a multi-column index)."""
        table = self.table(table_id)
        rows = table.rows
        return [rows[rid] for rid in self._index(table, index_id).seek(key)]

    def find(self, table_id: int, index_id: int, key: Any) -> Row | None:
        """The row with ``key`` in a unique index, or None."""
        table, index = self._unique_index(table_id, index_id)
        return table.row_by_key(index, key)

    def _unique_index(self, table_id: int, index_id: int) -> tuple[Table, Index]:
        """The table and its unique index ``index_id``; raises saying which is missing or not unique. (The
        lookups of a reducer's most frequent read and write: two dict accesses, ``table`` and ``_index`` only
        to say what is wrong.) The last one found is kept until the schema changes: a reducer's finds and updates
        mostly go through one index (compiled, each dict access also boxes its int key into a new object)."""
        if index_id == self._last_index_id and table_id == self._last_table_id:
            last = self._last_index
            if last is not None:
                return last
        try:
            table = self._tables[table_id]
            index = table.index_by_id[index_id]
        except KeyError:
            table = self.table(table_id)
            index = self._index(table, index_id)
        if not index.unique:
            raise IndexNotUniqueError(f"index `{index.schema.name}` is not unique")
        self._last_table_id, self._last_index_id = table_id, index_id
        self._last_index = table, index
        return table, index

    def range(
        self,
        table_id: int,
        index_id: int,
        low: Any = None,
        high: Any = None,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> list[Row]:
        """Rows whose key lies in the range (None = open end), in key order."""
        table = self.table(table_id)
        rows = table.rows
        rids = self._index(table, index_id).range(low, high, low_inclusive, high_inclusive)
        return [rows[rid] for rid in rids]

    def prefix(self, table_id: int, index_id: int, prefix: tuple[Any, ...]) -> list[Row]:
        """Rows of a multi-column index whose leading columns equal ``prefix``."""
        table = self.table(table_id)
        rows = table.rows
        return [rows[rid] for rid in self._index(table, index_id).prefix(prefix)]

    def prefix_range(
        self,
        table_id: int,
        index_id: int,
        prefix: tuple[Any, ...],
        low: Any,
        high: Any,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> list[Row]:
        table = self.table(table_id)
        rows = table.rows
        rids = self._index(table, index_id).prefix_range(prefix, low, high, low_inclusive, high_inclusive)
        return [rows[rid] for rid in rids]

    def contains(self, table_id: int, row: Row) -> bool:
        return self.table(table_id).locate(row) is not None


class ReadTx(_Reader):
    """A read-only transaction: a consistent view of committed state while it is open."""

    __slots__ = ()

    def release(self) -> None:
        if not self._closed:
            self._closed = True
            self._ds.lock.release_read()

    def __enter__(self) -> ReadTx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class MutTx(_Reader):
    """The one mutable transaction of a datastore, holding its writer lock.

    It owns its ending: ``rollback``, or a commit in two halves — ``prepare_commit`` computes the net changes
    while the writer lock is still held (so the caller can log the transaction before anyone sees it), then
    ``finish_commit`` releases the lock, or with ``read_view`` turns it into a read lock and hands back the
    ``ReadTx`` that sees exactly the post-commit state (release it when done)."""

    __slots__ = ("_changes", "_dropped", "_schema_touched", "_seq_undo")

    def __init__(self, datastore: Datastore) -> None:
        self._ds = datastore
        self._tables = datastore.tables  # (as ``_Reader``'s)
        self._closed = False
        self._forget_last_index()
        self._changes: dict[int, _Changes] = {}
        # the rarely used ones start as None (an allocation costs more than most reducers' work): the first
        # sequence bound, schema change or dropped table gives the transaction its own container
        self._seq_undo: list[tuple[Sequence, int]] | None = None
        self._schema_touched: set[int] | None = None
        self._dropped: dict[int, Table] | None = None

    # -- ending -----------------------------------------------------------------------------------------------

    def has_changes(self) -> bool:
        """Whether committing would write anything (rows, schema)."""
        if self._dropped or self._schema_touched:
            return True
        # a loop, not any(): a generator costs a frame, and this runs at every reducer call
        for changes in self._changes.values():  # noqa: SIM110
            if changes.inserted or changes.deleted:
                return True
        return False

    def prepare_commit(self) -> TxData:
        """The net changes of the transaction; an error rolls it back. The writer lock stays held."""
        if self._closed:
            raise TransactionClosedError("the transaction is already finished")
        try:
            if self._schema_touched:
                self._refresh_schemas()
            data = self._net_changes()
        except BaseException:
            self.rollback()
            raise
        self._closed = True
        return data

    def abandon_prepared(self) -> None:
        """Undo a transaction after ``prepare_commit`` (its record could not be logged) and release the writer
        lock: what is in memory never gets ahead of the log."""
        try:
            self._undo()
        finally:
            self._ds.lock.release_write()

    def finish_commit(self, read_view: bool = False) -> ReadTx | None:
        """Let others see the commit; with ``read_view``, keep reading the post-commit state (and nothing
        later) through the returned ``ReadTx``."""
        lock = self._ds.lock
        if not read_view:
            lock.release_write()
            return None
        lock.downgrade()
        return ReadTx(self._ds)

    def commit(self) -> TxData:
        data = self.prepare_commit()
        self._ds.lock.release_write()  # ``finish_commit()``, inline: a reducer that changed nothing ends here
        return data

    def rollback(self) -> None:
        """Undo every change and release the writer lock (nothing happens once finished)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._undo()
        finally:
            self._ds.lock.release_write()

    def scan(self, table_id: int) -> Iterator[Row]:
        # a snapshot, so that a reducer may delete while it iterates
        return iter(list(self.table(table_id).rows.values()))

    def _changes_of(self, table: Table) -> _Changes:
        changes = self._changes.get(table.table_id)
        if changes is None or changes.table is not table:
            changes = self._changes[table.table_id] = _Changes(table)
        return changes

    # -- row writes -------------------------------------------------------------------------------------------

    def insert(self, table_id: int, row: Row) -> Row:
        """Insert ``row`` (a tuple), filling auto-increment columns given as 0; returns the stored row.

        Inserting a row equal to an existing one is a no-op (set semantics); a different row with the same
        unique key raises ``UniqueConstraintViolation`` and changes nothing.
        """
        table = self._tables.get(table_id)
        if table is None:
            raise NoSuchTableError(table_id)
        if type(row) is not tuple:
            raise TypeError(f"a row must be a tuple, got {type(row).__name__}")
        if table.sequences:
            row = self._fill_sequences(table, row)
        try:
            data = table.encode_unchecked(row)
        except Exception:
            data = table.encode(row)  # raises the error that names the column
        rid = table.find_same(row)
        if rid is not None:
            return table.rows[rid]
        rid = table.rid_for(row)
        table.add(rid, row)
        changes = self._changes_of(table)
        changes.inserted[rid] = data
        if changes.deleted:
            changes.reinserted = True
        if table_id in _SCHEMA_TABLE_IDS:
            self._schema_row_changed(table_id, row)
        return row

    def _fill_sequences(self, table: Table, row: Row) -> Row:
        values = None
        for col, seq in table.sequences:
            if row[col] == 0:
                if values is None:
                    values = list(row)
                values[col] = seq.next_value(self._persist_sequence)
        return row if values is None else tuple(values)

    def next_sequence_value(self, table_id: int, col_pos: int) -> int:
        """Take the next value of the sequence on column ``col_pos`` of ``table_id`` without inserting a row
        (it is never handed out again, as for an insert); e.g. a table id for something that is not stored."""
        table = self._tables.get(table_id)
        if table is None:
            raise NoSuchTableError(table_id)
        for col, seq in table.sequences:
            if col == col_pos:
                return seq.next_value(self._persist_sequence)
        raise SchemaError(f"column {col_pos} of table `{table.name}` has no sequence")

    def _persist_sequence(self, seq: Sequence, bound: int) -> None:
        if self._seq_undo is None:
            self._seq_undo = []
        self._seq_undo.append((seq, seq.allocated))
        table = self._tables[ST_SEQUENCE_ID]
        index = table.unique_indexes[0]
        rid = index.map.get(seq.schema.sequence_id)
        if rid is None:
            return  # the sequence's own row is being created in this transaction; it carries the bound
        old = table.rows[rid]
        # the in-memory schemas do not depend on `allocated`, so this is not a schema change
        self._replace_sequence_row(table, rid, old, (*old[:8], bound))

    def delete(self, table_id: int, row: Row) -> bool:
        """Delete the row equal to ``row``; False if there is none."""
        table = self.table(table_id)
        rid = table.locate(row)
        if rid is None:
            return False
        self._delete_rid(table, rid)
        return True

    def _delete_rid(self, table: Table, rid: int) -> Row:
        row = table.remove(rid)
        changes = self._changes_of(table)
        if changes.inserted.pop(rid, None) is None:
            changes.deleted[rid] = row
        if table.table_id in _SCHEMA_TABLE_IDS:
            self._schema_row_changed(table.table_id, row)
        return row

    def delete_by_key(self, table_id: int, index_id: int, key: Any) -> int:
        """Delete every row whose key in the index equals ``key``; returns how many."""
        table = self.table(table_id)
        rids = list(self._index(table, index_id).seek(key))
        for rid in rids:
            self._delete_rid(table, rid)
        return len(rids)

    def delete_by_range(
        self,
        table_id: int,
        index_id: int,
        low: Any = None,
        high: Any = None,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> int:
        table = self.table(table_id)
        rids = self._index(table, index_id).range(low, high, low_inclusive, high_inclusive)
        for rid in rids:
            self._delete_rid(table, rid)
        return len(rids)

    def clear(self, table_id: int) -> int:
        table = self.table(table_id)
        rids = list(table.rows)
        for rid in rids:
            self._delete_rid(table, rid)
        return len(rids)

    def update(self, table_id: int, index_id: int, row: Row) -> Row:
        """Replace the row that has ``row``'s key in the unique index ``index_id`` with ``row``."""
        # a reducer's most frequent write: the bookkeeping of ``_replace_sequence_row`` inline
        table, index = self._unique_index(table_id, index_id)
        if type(row) is not tuple:
            raise TypeError(f"a row must be a tuple, got {type(row).__name__}")
        try:
            data = table.encode_unchecked(row)
        except Exception:
            data = table.encode(row)  # raises the error that names the column
        key = index.key_of(row)
        old = table.row_by_key(index, key)
        if old is None:
            raise NoSuchRowError(
                f"no row in `{table.name}` with {'/'.join(table.column_names(index.columns))} = {key!r}"
            )
        if old == row:
            return old
        rid = table.rid_of(index, key, old)
        if len(table.unique_indexes) > 1:
            self._check_other_unique(table, index, rid, row)
        table.replace(rid, old, row, index)
        # the dict keys, boxed once: compiled, an ``int`` is kept unboxed and boxed anew (a new object, beyond
        # the small ints) at each dict access
        table_key: Any = table_id
        rid_key: Any = rid
        changes = self._changes.get(table_key)
        if changes is None or changes.table is not table:
            changes = self._changes[table_key] = _Changes(table)
        inserted = changes.inserted
        if rid_key not in inserted:
            changes.deleted[rid_key] = old
        inserted[rid_key] = data
        if table_key in _SCHEMA_TABLE_IDS:
            self._schema_row_changed(table_id, old)
        return row

    @staticmethod
    def _check_other_unique(table: Table, index: Index, rid: int, row: Row) -> None:
        """Raise if ``row`` takes a key of a unique index other than ``index`` that another row holds."""
        for other in table.unique_indexes:
            if other is not index:
                other_key = other.key_of(row)
                holder = other.map.get(other_key)
                if holder is not None and holder != rid:
                    raise UniqueConstraintViolation(table.name, table.column_names(other.columns), other_key)

    def _replace_sequence_row(self, table: Table, rid: int, old: Row, new: Row) -> None:
        """Replace a ``st_sequence`` row (a new persisted bound, which is not a schema change)."""
        table.replace(rid, old, new)
        changes = self._changes_of(table)
        if rid not in changes.inserted:
            changes.deleted[rid] = old
        changes.inserted[rid] = table.encode(new)

    # -- schema changes: writes to the system tables, then the in-memory schema is re-derived -------------------

    def _schema_row_changed(self, system_table_id: int, row: Row) -> None:
        if self._schema_touched is None:
            self._schema_touched = set()
        self._schema_touched.add(row[TABLE_ID_COLUMN[system_table_id]])

    def create_table(self, definition: TableDef) -> TableSchema:
        """Create a table from its definition (ids and generated names are filled in) and return its schema."""
        name = definition.name
        if not name or self.table_id(name) is not None:
            raise SchemaError(f"a table named `{name}` already exists" if name else "a table needs a name")
        self._validate_definition(definition)
        table_row = self.insert(
            ST_TABLE_ID,
            st_table_row(0, name, definition.is_system, definition.public, definition.primary_key),
        )
        table_id = table_row[0]
        col_names = [c[0] for c in definition.columns]
        for pos, (col_name, col_type) in enumerate(definition.columns):
            self.insert(ST_COLUMN_ID, st_column_row(table_id, pos, col_name, col_type))
        for index in definition.indexes:
            self._insert_index_row(table_id, name, col_names, index)
        for columns, constraint_name in definition.unique_constraints:
            cname = constraint_name or generated_constraint_name(name, [col_names[c] for c in columns])
            self.insert(ST_CONSTRAINT_ID, st_constraint_row(0, table_id, cname, columns))
        for seq in definition.sequences:
            sname = seq.name or generated_sequence_name(name, col_names[seq.col_pos])
            self.insert(ST_SEQUENCE_ID, st_sequence_row(0, table_id, sname, seq, 0))
        if definition.schedule is not None:
            sched = definition.schedule
            sname = sched.name or generated_schedule_name(name)
            self.insert(
                ST_SCHEDULED_ID, st_scheduled_row(0, table_id, sched.reducer_name, sname, sched.at_column)
            )
        self._refresh_schemas()
        return self._tables[table_id].schema

    def _validate_definition(self, definition: TableDef) -> None:
        names = [c[0] for c in definition.columns]
        if len(set(names)) != len(names):
            raise SchemaError(f"table `{definition.name}` has duplicate column names")
        if not names:
            raise SchemaError(f"table `{definition.name}` has no columns")
        n = len(names)
        for index in definition.indexes:
            if not index.columns or any(not 0 <= c < n for c in index.columns):
                raise SchemaError(f"an index of `{definition.name}` refers to a missing column")
        for columns, _ in definition.unique_constraints:
            if not any(tuple(i.columns) == tuple(columns) for i in definition.indexes):
                raise SchemaError(f"a unique constraint of `{definition.name}` has no index on its columns")
        for seq in definition.sequences:
            if not 0 <= seq.col_pos < n:
                raise SchemaError(f"a sequence of `{definition.name}` refers to a missing column")

    def _insert_index_row(self, table_id: int, table_name: str, col_names: list[str], index: IndexDef) -> int:
        iname = index.name or generated_index_name(
            table_name, [col_names[c] for c in index.columns], index.algorithm
        )
        row = self.insert(ST_INDEX_ID, st_index_row(0, table_id, iname, index.columns, index.algorithm))
        index_id: int = row[0]
        return index_id

    def drop_table(self, table_id: int) -> None:
        """Drop a table with its rows, indexes, constraints, sequences, schedule and RLS rules."""
        table = self.table(table_id)
        if table.schema.is_system:
            raise SchemaError(f"system table `{table.name}` cannot be dropped")
        self.clear(table_id)
        for system_id, column in (
            (ST_COLUMN_ID, 0),
            (ST_INDEX_ID, 1),
            (ST_CONSTRAINT_ID, 2),
            (ST_SEQUENCE_ID, 2),
            (ST_SCHEDULED_ID, 1),
            (ST_ROW_LEVEL_SECURITY_ID, 0),
        ):
            for row in [r for r in self._tables[system_id].rows.values() if r[column] == table_id]:
                self.delete(system_id, row)
        self.delete(ST_TABLE_ID, self.find(ST_TABLE_ID, self._pk_index(ST_TABLE_ID), table_id))  # type: ignore[arg-type]  # the st_table row of an existing table exists
        self._refresh_schemas()

    def _pk_index(self, table_id: int) -> int:
        return self.table(table_id).unique_indexes[0].schema.index_id

    def create_index(
        self, table_id: int, index: IndexDef, unique: bool = False, name: str | None = None
    ) -> int:
        """Add an index (and a unique constraint when ``unique``) to an existing table; returns its id."""
        table = self.table(table_id)
        col_names = [c.name for c in table.schema.columns]
        if any(not 0 <= c < len(col_names) for c in index.columns) or not index.columns:
            raise SchemaError(f"index on `{table.name}` refers to a missing column")
        index_id = self._insert_index_row(table_id, table.name, col_names, index)
        if unique:
            cname = name or generated_constraint_name(table.name, [col_names[c] for c in index.columns])
            self.insert(ST_CONSTRAINT_ID, st_constraint_row(0, table_id, cname, index.columns))
        self._refresh_schemas()
        return index_id

    def drop_index(self, table_id: int, index_id: int) -> None:
        """Drop an index, and the unique constraint it backs, if any."""
        table = self.table(table_id)
        index = self._index(table, index_id)
        if (
            table.schema.primary_key is not None
            and index.columns == (table.schema.primary_key,)
            and index.unique
        ):
            raise SchemaError(f"the primary key index of `{table.name}` cannot be dropped")
        row = self.find(ST_INDEX_ID, self._pk_index(ST_INDEX_ID), index_id)
        assert row is not None
        self.delete(ST_INDEX_ID, row)
        if index.unique and sum(1 for i in table.indexes if i.columns == index.columns) == 1:
            for c in table.schema.constraints:
                if c.columns == index.columns:
                    constraint = self.find(
                        ST_CONSTRAINT_ID, self._pk_index(ST_CONSTRAINT_ID), c.constraint_id
                    )
                    assert constraint is not None
                    self.delete(ST_CONSTRAINT_ID, constraint)
        self._refresh_schemas()

    def set_table_access(self, table_id: int, public: bool) -> None:
        row = self.find(ST_TABLE_ID, self._pk_index(ST_TABLE_ID), table_id)
        if row is None:
            raise NoSuchTableError(table_id)
        self.update(
            ST_TABLE_ID, self._pk_index(ST_TABLE_ID), (*row[:3], "public" if public else "private", row[4])
        )
        self._refresh_schemas()

    def set_column_type(self, table_id: int, pos: int, ty: AlgebraicType) -> None:
        """Change a column's type to one that reads every stored value as it is (the caller checks that, e.g. a
        sum type that only gained variants at the end)."""
        table = self.table(table_id)
        column = table.schema.columns[pos]
        old = next(r for r in self._tables[ST_COLUMN_ID].rows.values() if r[0] == table_id and r[1] == pos)
        self.delete(ST_COLUMN_ID, old)
        self.insert(ST_COLUMN_ID, st_column_row(table_id, pos, column.name, ty))
        self._refresh_schemas()

    def set_primary_key(self, table_id: int, column: int | None) -> None:
        """Make ``column`` (or no column) the table's primary key; its unique index must exist already."""
        row = self.find(ST_TABLE_ID, self._pk_index(ST_TABLE_ID), table_id)
        if row is None:
            raise NoSuchTableError(table_id)
        self.update(
            ST_TABLE_ID, self._pk_index(ST_TABLE_ID), (*row[:4], None if column is None else (column,))
        )
        self._refresh_schemas()

    def add_unique_constraint(self, table_id: int, columns: tuple[int, ...]) -> None:
        """Make the existing index on exactly ``columns`` unique; raises ``UniqueConstraintViolation`` when the
        rows already repeat a key."""
        table = self.table(table_id)
        if not any(index.columns == columns for index in table.indexes):
            raise SchemaError(f"a unique constraint of `{table.name}` has no index on its columns")
        name = generated_constraint_name(table.name, [table.schema.columns[c].name for c in columns])
        self.insert(ST_CONSTRAINT_ID, st_constraint_row(0, table_id, name, columns))
        self._refresh_schemas()

    def drop_unique_constraint(self, table_id: int, columns: tuple[int, ...]) -> None:
        """Drop the unique constraint on exactly ``columns``; the index on them stays (non-unique)."""
        table = self.table(table_id)
        for constraint in table.schema.constraints:
            if constraint.columns == columns:
                row = self.find(ST_CONSTRAINT_ID, self._pk_index(ST_CONSTRAINT_ID), constraint.constraint_id)
                assert row is not None
                self.delete(ST_CONSTRAINT_ID, row)
        self._refresh_schemas()

    def create_sequence(self, table_id: int, sequence: SequenceDef) -> None:
        """Make a column auto-increment from ``sequence.start`` (default its minimum)."""
        table = self.table(table_id)
        if not 0 <= sequence.col_pos < len(table.schema.columns):
            raise SchemaError(f"a sequence of `{table.name}` refers to a missing column")
        name = sequence.name or generated_sequence_name(
            table.name, table.schema.columns[sequence.col_pos].name
        )
        self.insert(ST_SEQUENCE_ID, st_sequence_row(0, table_id, name, sequence, 0))
        self._refresh_schemas()

    def drop_sequence(self, table_id: int, col_pos: int) -> None:
        """Stop a column from auto-incrementing."""
        table = self.table(table_id)
        for column, sequence in table.sequences:
            if column == col_pos:
                row = self.find(ST_SEQUENCE_ID, self._pk_index(ST_SEQUENCE_ID), sequence.schema.sequence_id)
                assert row is not None
                self.delete(ST_SEQUENCE_ID, row)
        self._refresh_schemas()

    def set_schedule(self, table_id: int, reducer_name: str | None, at_column: int | None = None) -> None:
        """Attach (or with None, detach) a scheduled reducer to a table."""
        table = self.table(table_id)
        for row in [r for r in self._tables[ST_SCHEDULED_ID].rows.values() if r[1] == table_id]:
            self.delete(ST_SCHEDULED_ID, row)
        if reducer_name is not None:
            assert at_column is not None
            self.insert(
                ST_SCHEDULED_ID,
                st_scheduled_row(0, table_id, reducer_name, generated_schedule_name(table.name), at_column),
            )
        self._refresh_schemas()

    def _refresh_schemas(self) -> None:
        self._forget_last_index()  # (tables and indexes may be replaced)
        touched, self._schema_touched = self._schema_touched or (), None
        if self._dropped is None:
            self._dropped = {}
        self._ds.refresh_schemas(touched, self._dropped)

    # -- finishing --------------------------------------------------------------------------------------------

    def _net_changes(self) -> TxData:
        by_table = self._changes
        if not by_table:
            return EMPTY_TX_DATA
        tables = []
        # (compiled, the comprehensions are C loops; ``map`` over a bound method would call it generically. The
        # items, not the keys and then ``by_table[table_id]``: an unboxed int would be boxed anew for that lookup)
        for table_id, changes in sorted(by_table.items()) if len(by_table) > 1 else by_table.items():
            inserted, deleted = changes.inserted, changes.deleted
            if not inserted and not deleted:
                continue
            table = changes.table
            rows = table.rows
            insert_rows = [rows[rid] for rid in inserted]
            insert_bytes = list(inserted.values())
            delete_rows = list(deleted.values())
            if changes.reinserted and insert_rows and delete_rows:
                insert_rows, insert_bytes, delete_rows = _cancel_reinserted(
                    insert_rows, insert_bytes, delete_rows
                )
                if not insert_rows and not delete_rows:
                    continue
            encode = table.encode_unchecked  # (rows the table held: they encode)
            delete_bytes = [encode(row) for row in delete_rows]
            tables.append(
                TableChanges(
                    table_id, table.name, table.schema, insert_rows, delete_rows, insert_bytes, delete_bytes
                )
            )
        return TxData(tuple(tables), not _SCHEMA_TABLE_IDS.isdisjoint(by_table))

    def _undo(self) -> None:
        tables = self._tables
        if self._dropped:
            for table_id, table in self._dropped.items():
                tables[table_id] = table
        for changes in self._changes.values():
            table = changes.table
            for rid in changes.inserted:
                table.remove(rid)
            for rid, row in changes.deleted.items():
                table.add(rid, row)
        for seq, allocated in reversed(self._seq_undo or ()):
            seq.allocated = allocated
        if self._dropped or not SCHEMA_TABLE_IDS.isdisjoint(self._changes):
            self._ds.rebuild_all_schemas()


def _cancel_reinserted(
    insert_rows: list[Row], insert_bytes: list[bytes], delete_rows: list[Row]
) -> tuple[list[Row], list[bytes], list[Row]]:
    """Drop (insert, delete) pairs of the same row: a deleted row put back in the same transaction."""
    common = set(insert_rows).intersection(delete_rows)
    if not common:
        return insert_rows, insert_bytes, delete_rows
    kept = [(r, b) for r, b in zip(insert_rows, insert_bytes, strict=True) if r not in common]
    return [r for r, _ in kept], [b for _, b in kept], [r for r in delete_rows if r not in common]
