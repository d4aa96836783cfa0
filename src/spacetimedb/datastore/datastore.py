"""The datastore: every table of one database, in memory, with transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spacetimedb.sats import DecodeError, codec

from .errors import DatastoreError, SchemaError, UniqueConstraintViolation
from .locking import RWLock
from .schema import (
    FIRST_USER_ID,
    SCHEMA_TABLE_IDS,
    ST_COLUMN_ID,
    ST_CONSTRAINT_ID,
    ST_INDEX_ID,
    ST_SCHEDULED_ID,
    ST_SEQUENCE_ID,
    ST_TABLE_ID,
    SYSTEM_TABLES,
    SystemRows,
    TableSchema,
    generated_constraint_name,
    generated_index_name,
    generated_sequence_name,
    schema_from_rows,
    st_column_row,
    st_constraint_row,
    st_index_row,
    st_sequence_row,
    st_table_row,
)
from .table import Row, Table
from .table import Sequence as SequenceState
from .tx import TABLE_ID_COLUMN, MutTx, ReadTx, TxData


class ReplayError(DatastoreError):
    """The log or snapshot being applied does not fit the state it is applied to."""


class Datastore:
    """All tables of a database. One mutable transaction at a time; read-only ones share a reader lock."""

    def __init__(self) -> None:
        self.lock = RWLock()
        self.tables: dict[int, Table] = {}
        self.table_names: dict[str, int] = {}
        self.sequences: dict[int, SequenceState] = {}
        self._bootstrap()

    # -- bootstrap ------------------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        """Create the system tables and the rows describing them (implicit in every database, never logged)."""
        ids = {"index": 1, "constraint": 1, "sequence": 1}

        def next_id(kind: str) -> int:
            ids[kind] += 1
            return ids[kind] - 1

        described: list[SystemRows] = []
        for table_id, definition in SYSTEM_TABLES.items():
            names = [c[0] for c in definition.columns]
            rows = SystemRows(st_table_row(table_id, definition.name, True, True, definition.primary_key))
            rows.columns = [
                st_column_row(table_id, pos, n, t) for pos, (n, t) in enumerate(definition.columns)
            ]
            for index in definition.indexes:
                iname = generated_index_name(
                    definition.name, [names[c] for c in index.columns], index.algorithm
                )
                rows.indexes.append(
                    st_index_row(next_id("index"), table_id, iname, index.columns, index.algorithm)
                )
            for columns, _ in definition.unique_constraints:
                cname = generated_constraint_name(definition.name, [names[c] for c in columns])
                rows.constraints.append(st_constraint_row(next_id("constraint"), table_id, cname, columns))
            for seq in definition.sequences:
                sname = generated_sequence_name(definition.name, names[seq.col_pos])
                rows.sequences.append(
                    st_sequence_row(next_id("sequence"), table_id, sname, seq, FIRST_USER_ID)
                )
            described.append(rows)
        for rows in described:
            self._register(Table(schema_from_rows(rows)))
        for rows in described:
            for system_id, system_rows in (
                (ST_TABLE_ID, [rows.table]),
                (ST_COLUMN_ID, rows.columns),
                (ST_INDEX_ID, rows.indexes),
                (ST_CONSTRAINT_ID, rows.constraints),
                (ST_SEQUENCE_ID, rows.sequences),
            ):
                table = self.tables[system_id]
                for row in system_rows:
                    table.add(table.rid_for(row), row)
        for table in list(self.tables.values()):
            self._bind_sequences(table)

    def _register(self, table: Table) -> None:
        self.tables[table.table_id] = table
        self.table_names[table.name] = table.table_id

    def _bind_sequences(self, table: Table) -> None:
        bound = []
        for seq_schema in table.schema.sequences:
            state = self.sequences.get(seq_schema.sequence_id)
            if state is None:
                state = self.sequences[seq_schema.sequence_id] = SequenceState(seq_schema)
            bound.append((seq_schema.col_pos, state))
        table.sequences = bound

    # -- transactions -----------------------------------------------------------------------------------------

    def begin_mut_tx(self, timeout: float | None = None) -> MutTx:
        if not self.lock.acquire_write(timeout):
            raise TimeoutError("timed out waiting for the write lock")
        return MutTx(self)

    def begin_tx(self, timeout: float | None = None) -> ReadTx:
        if not self.lock.acquire_read(timeout):
            raise TimeoutError("timed out waiting for the read lock")
        return ReadTx(self)

    def commit(self, tx: MutTx) -> TxData:
        """Finish ``tx``, returning its net changes (``MutTx.commit`` also offers the post-commit read view)."""
        data = tx.prepare_commit()
        tx.finish_commit()
        return data

    def rollback(self, tx: MutTx) -> None:
        tx.rollback()

    # -- schema maintenance -----------------------------------------------------------------------------------

    def _system_index(self, system_table_id: int, columns: tuple[int, ...]) -> Any:
        table = self.tables[system_table_id]
        index_schema = table.schema.index_on(columns)
        assert index_schema is not None, (system_table_id, columns)
        return table, table.index_by_id[index_schema.index_id]

    def _rows_for(self, system_table_id: int, table_id: int) -> list[Row]:
        column = TABLE_ID_COLUMN[system_table_id]
        table, index = self._system_index(
            system_table_id, (column,) if system_table_id != ST_COLUMN_ID else (0, 1)
        )
        rids = index.prefix((table_id,)) if system_table_id == ST_COLUMN_ID else index.seek(table_id)
        return [table.rows[rid] for rid in rids]

    def system_rows(self, table_id: int) -> SystemRows | None:
        """The schema rows describing ``table_id``, or None if it has no ``st_table`` row."""
        table_rows = self._rows_for(ST_TABLE_ID, table_id)
        if not table_rows:
            return None
        schedules = self._rows_for(ST_SCHEDULED_ID, table_id)
        return SystemRows(
            table=table_rows[0],
            columns=self._rows_for(ST_COLUMN_ID, table_id),
            indexes=self._rows_for(ST_INDEX_ID, table_id),
            constraints=self._rows_for(ST_CONSTRAINT_ID, table_id),
            sequences=self._rows_for(ST_SEQUENCE_ID, table_id),
            schedule=schedules[0] if schedules else None,
        )

    def refresh_schemas(self, table_ids: Iterable[int], dropped: dict[int, Table]) -> None:
        """Re-derive the in-memory schema of each table from its system rows (create, change or drop it)."""
        for table_id in sorted(set(table_ids)):
            rows = self.system_rows(table_id)
            existing = self.tables.get(table_id)
            if rows is None:
                if existing is not None:
                    del self.tables[table_id]
                    if self.table_names.get(existing.name) == table_id:
                        del self.table_names[existing.name]
                    dropped.setdefault(table_id, existing)
                    for _, seq in existing.sequences:
                        self.sequences.pop(seq.schema.sequence_id, None)
                continue
            schema = schema_from_rows(rows)
            if existing is None:
                table = Table(schema)
            else:
                if self.table_names.get(existing.name) == table_id:
                    del self.table_names[existing.name]
                existing.apply_schema(schema)
                table = existing
            if schema.name in self.table_names and self.table_names[schema.name] != table_id:
                raise SchemaError(f"a table named `{schema.name}` already exists")
            self._register(table)
            self._bind_sequences(table)

    def rebuild_all_schemas(self) -> None:
        """Make every user table agree with the system tables again (after a rollback of schema changes)."""
        described = {row[0] for row in self.tables[ST_TABLE_ID].rows.values()}
        user_ids = {
            tid for tid in described | set(self.tables) if tid >= FIRST_USER_ID or tid not in SYSTEM_TABLES
        }
        self.refresh_schemas(user_ids, {})
        for seq_row in self.tables[ST_SEQUENCE_ID].rows.values():
            state = self.sequences.get(seq_row[0])
            if state is not None:
                state.allocated = seq_row[8]

    def reset_sequences_from_rows(self) -> None:
        """After a replay or restore: resume every sequence at its persisted bound, so none repeats a value."""
        for seq_row in self.tables[ST_SEQUENCE_ID].rows.values():
            state = self.sequences.get(seq_row[0])
            if state is None:
                continue
            allocated = seq_row[8]
            state.allocated = allocated
            state.value = allocated if allocated else seq_row[5]

    # -- replay and snapshots ---------------------------------------------------------------------------------

    def replay_transaction(
        self,
        inserts: Sequence[tuple[int, Sequence[bytes]]],
        deletes: Sequence[tuple[int, Sequence[bytes]]],
    ) -> None:
        """Apply one logged transaction. Deletes are of rows that existed before it, inserts of rows that did
        not, so: schema rows first, then user deletes with the old schemas, then user inserts with the new."""
        touched: set[int] = set()
        for table_id, rows in deletes:
            if table_id in SCHEMA_TABLE_IDS:
                touched.update(self._replay_rows(table_id, rows, delete=True))
        for table_id, rows in inserts:
            if table_id in SCHEMA_TABLE_IDS:
                touched.update(self._replay_rows(table_id, rows, delete=False))
        for table_id, rows in deletes:
            if table_id not in SCHEMA_TABLE_IDS:
                self._replay_rows(table_id, rows, delete=True)
        if touched:
            self.refresh_schemas(touched, {})
        for table_id, rows in inserts:
            if table_id not in SCHEMA_TABLE_IDS:
                self._replay_rows(table_id, rows, delete=False)

    def _replay_rows(self, table_id: int, rows: Sequence[bytes], delete: bool) -> set[int]:
        table = self.tables.get(table_id)
        if table is None:
            raise ReplayError(f"the log refers to table {table_id}, which does not exist at that point")
        decode = codec(table.schema.row_type).decode
        touched: set[int] = set()
        id_column = TABLE_ID_COLUMN.get(table_id)
        for data in rows:
            try:
                row = decode(data)
            except DecodeError as exc:
                raise ReplayError(f"a row of `{table.name}` does not decode: {exc}") from None
            if delete:
                rid = table.locate(row)
                if rid is None:
                    raise ReplayError(f"the log deletes a row of `{table.name}` that does not exist: {row!r}")
                table.remove(rid)
            else:
                try:
                    if table.find_same(row) is not None:
                        raise ReplayError(
                            f"the log inserts a row of `{table.name}` that already exists: {row!r}"
                        )
                except UniqueConstraintViolation as exc:
                    raise ReplayError(f"the log violates a unique constraint: {exc}") from None
                table.add(table.rid_for(row), row)
            if id_column is not None:
                touched.add(row[id_column])
        return touched

    def export_rows(self) -> dict[int, list[bytes]]:
        """Every table's rows as BSATN (call under a read lock or inside a transaction)."""
        return {
            tid: [table.encode(r) for r in table.rows.values()] for tid, table in sorted(self.tables.items())
        }

    def import_rows(self, tables: Mapping[int, Sequence[bytes]]) -> None:
        """Load a snapshot into a freshly bootstrapped datastore."""
        for table_id in SYSTEM_TABLES:
            table = self.tables[table_id]
            table.clear()
            table.next_rid = 1
        for table_id, rows in tables.items():
            if table_id in SYSTEM_TABLES:
                self._replay_rows(table_id, rows, delete=False)
        self.rebuild_all_schemas()
        for table_id, rows in tables.items():
            if table_id not in SYSTEM_TABLES:
                self._replay_rows(table_id, rows, delete=False)
        self.reset_sequences_from_rows()

    def schemas(self) -> list[TableSchema]:
        return [t.schema for t in sorted(self.tables.values(), key=lambda t: t.table_id)]
