"""Table schemas and the system tables that store them.

The system tables are the single source of truth for every schema: creating a table inserts rows into
``st_table``, ``st_column``, ``st_index``, ``st_constraint``, ``st_sequence`` (and ``st_scheduled``), and the
in-memory ``TableSchema`` is always derived from those rows (``schema_from_rows``) — the same path serves
bootstrap, transactions, rollback and replay.

A table's row layout never changes during its lifetime: changing columns creates a new table (a new id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F64,
    I64,
    I128,
    IDENTITY,
    STRING,
    U8,
    U16,
    U32,
    U64,
    AlgebraicType,
    ArrayType,
    ProductType,
    SumType,
    SumValue,
    option,
)
from spacetimedb.sats.meta import type_from_bsatn, type_to_bsatn

from .errors import SchemaError

# ---- fixed ids -------------------------------------------------------------------------------------------

ST_TABLE_ID = 1
ST_COLUMN_ID = 2
ST_SEQUENCE_ID = 3
ST_INDEX_ID = 4
ST_CONSTRAINT_ID = 5
ST_MODULE_ID = 6
ST_CLIENT_ID = 7
ST_VAR_ID = 8
ST_SCHEDULED_ID = 9
ST_ROW_LEVEL_SECURITY_ID = 10
ST_CONNECTION_CREDENTIALS_ID = 11  # upstream's id too
# the views of the module (upstream's ids too; upstream's st_view_sub (15) and st_view_arg (16) are not kept)
ST_VIEW_ID = 12
ST_VIEW_PARAM_ID = 13
ST_VIEW_COLUMN_ID = 14

# Ids below this are reserved for system objects; sequences of system tables start here.
FIRST_USER_ID = 4096

# Sequences persist their upper bound in st_sequence in steps of this many values.
SEQUENCE_ALLOCATION_STEP = 4096

INDEX_ALGORITHM_TYPE = SumType.of(
    ("Unused", I128),
    ("BTree", ProductType.of(("columns", ArrayType(U16)))),
    ("Direct", ProductType.of(("column", U16))),
    ("Hash", ProductType.of(("columns", ArrayType(U16)))),
)
CONSTRAINT_DATA_TYPE = SumType.of(("Unused", I128), ("Unique", ProductType.of(("columns", ArrayType(U16)))))
ST_VAR_VALUE_TYPE = SumType.of(("Bool", BOOL), ("I64", I64), ("U64", U64), ("F64", F64), ("String", STRING))

ALGORITHM_TAGS = {"btree": 1, "direct": 2, "hash": 3}
ALGORITHM_NAMES = {tag: name for name, tag in ALGORITHM_TAGS.items()}


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    pos: int
    name: str
    type: AlgebraicType


@dataclass(frozen=True, slots=True)
class IndexSchema:
    index_id: int
    table_id: int
    name: str
    columns: tuple[int, ...]
    algorithm: str = "btree"  # btree | hash | direct
    unique: bool = False  # derived: a unique constraint exists on exactly these columns


@dataclass(frozen=True, slots=True)
class ConstraintSchema:
    constraint_id: int
    table_id: int
    name: str
    columns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SequenceSchema:
    sequence_id: int
    table_id: int
    name: str
    col_pos: int
    increment: int = 1
    start: int = 1
    min_value: int = 1
    max_value: int = (1 << 127) - 1
    # the persisted bound when this schema was derived; the live value is in the datastore's Sequence
    allocated: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ScheduleSchema:
    schedule_id: int
    table_id: int
    reducer_name: str
    name: str
    at_column: int


@dataclass(frozen=True, slots=True)
class TableSchema:
    table_id: int
    name: str
    columns: tuple[ColumnSchema, ...]
    indexes: tuple[IndexSchema, ...] = ()
    constraints: tuple[ConstraintSchema, ...] = ()
    sequences: tuple[SequenceSchema, ...] = ()
    primary_key: int | None = None
    public: bool = True
    is_system: bool = False
    schedule: ScheduleSchema | None = None
    row_type: ProductType = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_type", ProductType.of(*((c.name, c.type) for c in self.columns)))

    def column_index(self, name: str) -> int:
        for c in self.columns:
            if c.name == name:
                return c.pos
        raise SchemaError(f"table `{self.name}` has no column `{name}`")

    def find_column(self, name: str) -> ColumnSchema | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def index_named(self, name: str) -> IndexSchema | None:
        for index in self.indexes:
            if index.name == name:
                return index
        return None

    def index_on(self, columns: Sequence[int]) -> IndexSchema | None:
        """An index whose columns are exactly ``columns`` (unique ones first)."""
        wanted = tuple(columns)
        found = [i for i in self.indexes if i.columns == wanted]
        found.sort(key=lambda i: not i.unique)
        return found[0] if found else None

    def unique_column_sets(self) -> list[tuple[int, ...]]:
        return [c.columns for c in self.constraints]


# ---- the definition of a new table, before ids are assigned ------------------------------------------------


@dataclass(slots=True)
class IndexDef:
    columns: tuple[int, ...]
    name: str | None = None
    algorithm: str = "btree"


@dataclass(slots=True)
class SequenceDef:
    col_pos: int
    name: str | None = None
    increment: int = 1
    start: int | None = None
    min_value: int | None = None
    max_value: int | None = None


@dataclass(slots=True)
class ScheduleDef:
    reducer_name: str
    at_column: int
    name: str | None = None


@dataclass(slots=True)
class TableDef:
    """What ``MutTx.create_table`` needs; names of indexes/constraints/sequences default to generated ones."""

    name: str
    columns: list[tuple[str, AlgebraicType]]
    indexes: list[IndexDef] = field(default_factory=list)
    unique_constraints: list[tuple[tuple[int, ...], str | None]] = field(default_factory=list)
    sequences: list[SequenceDef] = field(default_factory=list)
    primary_key: int | None = None
    public: bool = True
    is_system: bool = False
    schedule: ScheduleDef | None = None


def generated_index_name(table: str, columns: Sequence[str], algorithm: str) -> str:
    return f"{table}_{'_'.join(columns)}_idx_{algorithm}"


def generated_constraint_name(table: str, columns: Sequence[str]) -> str:
    return f"{table}_{'_'.join(columns)}_key"


def generated_sequence_name(table: str, column: str) -> str:
    return f"{table}_{column}_seq"


def generated_schedule_name(table: str) -> str:
    return f"{table}_sched"


# ---- system table definitions ----------------------------------------------------------------------------

ST_TABLE_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("table_id", U32),
    ("table_name", STRING),
    ("table_type", STRING),
    ("table_access", STRING),
    ("table_primary_key", option(ArrayType(U16))),
]
ST_COLUMN_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("table_id", U32),
    ("col_pos", U16),
    ("col_name", STRING),
    ("col_type", BYTES),
]
ST_SEQUENCE_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("sequence_id", U32),
    ("sequence_name", STRING),
    ("table_id", U32),
    ("col_pos", U16),
    ("increment", I128),
    ("start", I128),
    ("min_value", I128),
    ("max_value", I128),
    ("allocated", I128),
]
ST_INDEX_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("index_id", U32),
    ("table_id", U32),
    ("index_name", STRING),
    ("index_algorithm", INDEX_ALGORITHM_TYPE),
]
ST_CONSTRAINT_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("constraint_id", U32),
    ("constraint_name", STRING),
    ("table_id", U32),
    ("constraint_data", CONSTRAINT_DATA_TYPE),
]
ST_MODULE_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("database_identity", IDENTITY),
    ("owner_identity", IDENTITY),
    ("program_kind", U8),
    ("program_hash", BYTES),
    ("program_bytes", BYTES),
    ("module_version", STRING),
]
ST_CLIENT_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("identity", IDENTITY),
    ("connection_id", CONNECTION_ID),
]
ST_VAR_COLUMNS: list[tuple[str, AlgebraicType]] = [("name", STRING), ("value", ST_VAR_VALUE_TYPE)]
ST_SCHEDULED_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("schedule_id", U32),
    ("table_id", U32),
    ("reducer_name", STRING),
    ("schedule_name", STRING),
    ("at_column", U16),
]
ST_ROW_LEVEL_SECURITY_COLUMNS: list[tuple[str, AlgebraicType]] = [("table_id", U32), ("sql", STRING)]
# one row per connected client, beside its st_client row: the payload (JSON text) of the token it connected with
ST_CONNECTION_CREDENTIALS_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("connection_id", CONNECTION_ID),
    ("jwt_payload", STRING),
]
# one row per view of the module; `table_id`: the id its rows go by (taken from st_table's id sequence)
ST_VIEW_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("view_id", U32),
    ("view_name", STRING),
    ("table_id", option(U32)),
    ("is_public", BOOL),
    ("is_anonymous", BOOL),
]
# a view's parameters beyond its context, and the columns of its rows; types as in st_column
ST_VIEW_PARAM_COLUMNS: list[tuple[str, AlgebraicType]] = [
    ("view_id", U32),
    ("param_pos", U16),
    ("param_name", STRING),
    ("param_type", BYTES),
]
ST_VIEW_COLUMN_COLUMNS: list[tuple[str, AlgebraicType]] = [("view_id", U32), *ST_COLUMN_COLUMNS[1:]]


def _system_def(
    name: str,
    columns: list[tuple[str, AlgebraicType]],
    *,
    pk: int | None = None,
    auto_inc: bool = False,
    unique: Iterable[tuple[int, ...]] = (),
    btree: Iterable[tuple[int, ...]] = (),
) -> TableDef:
    unique_sets = ([(pk,)] if pk is not None else []) + list(unique)
    indexes = [IndexDef(cols) for cols in unique_sets] + [IndexDef(cols) for cols in btree]
    return TableDef(
        name=name,
        columns=columns,
        indexes=indexes,
        unique_constraints=[(cols, None) for cols in unique_sets],
        sequences=[SequenceDef(pk, start=FIRST_USER_ID, min_value=1)] if auto_inc and pk is not None else [],
        primary_key=pk,
        public=True,
        is_system=True,
    )


SYSTEM_TABLES: dict[int, TableDef] = {
    ST_TABLE_ID: _system_def("st_table", ST_TABLE_COLUMNS, pk=0, auto_inc=True, unique=[(1,)]),
    ST_COLUMN_ID: _system_def("st_column", ST_COLUMN_COLUMNS, unique=[(0, 1)]),
    ST_SEQUENCE_ID: _system_def("st_sequence", ST_SEQUENCE_COLUMNS, pk=0, auto_inc=True, btree=[(2,)]),
    ST_INDEX_ID: _system_def("st_index", ST_INDEX_COLUMNS, pk=0, auto_inc=True, btree=[(1,)]),
    ST_CONSTRAINT_ID: _system_def("st_constraint", ST_CONSTRAINT_COLUMNS, pk=0, auto_inc=True, btree=[(2,)]),
    ST_MODULE_ID: _system_def("st_module", ST_MODULE_COLUMNS),
    ST_CLIENT_ID: _system_def("st_client", ST_CLIENT_COLUMNS, btree=[(0, 1)]),
    ST_VAR_ID: _system_def("st_var", ST_VAR_COLUMNS, pk=0),
    ST_SCHEDULED_ID: _system_def("st_scheduled", ST_SCHEDULED_COLUMNS, pk=0, auto_inc=True, unique=[(1,)]),
    ST_ROW_LEVEL_SECURITY_ID: _system_def(
        "st_row_level_security", ST_ROW_LEVEL_SECURITY_COLUMNS, pk=1, btree=[(0,)]
    ),
    ST_CONNECTION_CREDENTIALS_ID: _system_def(
        "st_connection_credentials", ST_CONNECTION_CREDENTIALS_COLUMNS, pk=0
    ),
    ST_VIEW_ID: _system_def("st_view", ST_VIEW_COLUMNS, pk=0, auto_inc=True, unique=[(1,)]),
    ST_VIEW_PARAM_ID: _system_def("st_view_param", ST_VIEW_PARAM_COLUMNS, unique=[(0, 1)]),
    ST_VIEW_COLUMN_ID: _system_def("st_view_column", ST_VIEW_COLUMN_COLUMNS, unique=[(0, 1)]),
}
SYSTEM_TABLE_NAMES = {d.name: tid for tid, d in SYSTEM_TABLES.items()}
SCHEMA_TABLE_IDS = frozenset(
    {ST_TABLE_ID, ST_COLUMN_ID, ST_SEQUENCE_ID, ST_INDEX_ID, ST_CONSTRAINT_ID, ST_SCHEDULED_ID}
)


# ---- rows <-> schema -------------------------------------------------------------------------------------


def st_table_row(table_id: int, name: str, is_system: bool, public: bool, pk: int | None) -> tuple[Any, ...]:
    return (
        table_id,
        name,
        "system" if is_system else "user",
        "public" if public else "private",
        None if pk is None else (pk,),
    )


def st_column_row(table_id: int, pos: int, name: str, ty: AlgebraicType) -> tuple[Any, ...]:
    return (table_id, pos, name, type_to_bsatn(ty))


def st_index_row(
    index_id: int, table_id: int, name: str, columns: Sequence[int], algorithm: str
) -> tuple[Any, ...]:
    tag = ALGORITHM_TAGS.get(algorithm)
    if tag is None:
        raise SchemaError(f"unknown index algorithm {algorithm!r} (expected btree, hash or direct)")
    payload = (columns[0],) if algorithm == "direct" else (tuple(columns),)
    return (index_id, table_id, name, SumValue(tag, payload))


def st_constraint_row(
    constraint_id: int, table_id: int, name: str, columns: Sequence[int]
) -> tuple[Any, ...]:
    return (constraint_id, name, table_id, SumValue(1, (tuple(columns),)))


def st_sequence_row(
    sequence_id: int, table_id: int, name: str, seq: SequenceDef, allocated: int
) -> tuple[Any, ...]:
    start = seq.start if seq.start is not None else (seq.min_value if seq.min_value is not None else 1)
    min_value = seq.min_value if seq.min_value is not None else 1
    max_value = seq.max_value if seq.max_value is not None else (1 << 127) - 1
    return (sequence_id, name, table_id, seq.col_pos, seq.increment, start, min_value, max_value, allocated)


def st_scheduled_row(
    schedule_id: int, table_id: int, reducer: str, name: str, at_column: int
) -> tuple[Any, ...]:
    return (schedule_id, table_id, reducer, name, at_column)


@dataclass(slots=True)
class SystemRows:
    """The rows of the schema system tables that describe one table."""

    table: tuple[Any, ...]
    columns: list[tuple[Any, ...]] = field(default_factory=list)
    indexes: list[tuple[Any, ...]] = field(default_factory=list)
    constraints: list[tuple[Any, ...]] = field(default_factory=list)
    sequences: list[tuple[Any, ...]] = field(default_factory=list)
    schedule: tuple[Any, ...] | None = None


def schema_from_rows(rows: SystemRows) -> TableSchema:
    """Derive a ``TableSchema`` from its system rows; raises ``SchemaError`` if they are inconsistent."""
    table_id, name, table_type, access, pk = rows.table
    columns: list[ColumnSchema] = []
    for _, pos, col_name, col_type in sorted(rows.columns, key=lambda r: r[1]):
        if pos != len(columns):
            raise SchemaError(f"table `{name}` has a gap in its column positions at {len(columns)}")
        columns.append(ColumnSchema(pos, col_name, type_from_bsatn(col_type)))
    constraints = []
    for constraint_id, constraint_name, _, data in rows.constraints:
        if data.tag == 1:
            constraints.append(
                ConstraintSchema(constraint_id, table_id, constraint_name, tuple(data.value[0]))
            )
    unique_sets = {c.columns for c in constraints}
    indexes = []
    for index_id, _, index_name, algorithm in rows.indexes:
        if algorithm.tag == 0:
            continue
        cols = (algorithm.value[0],) if algorithm.tag == 2 else tuple(algorithm.value[0])
        indexes.append(
            IndexSchema(
                index_id, table_id, index_name, cols, ALGORITHM_NAMES[algorithm.tag], cols in unique_sets
            )
        )
    sequences = [
        SequenceSchema(sid, table_id, sname, col, inc, start, lo, hi, allocated)
        for sid, sname, _, col, inc, start, lo, hi, allocated in rows.sequences
    ]
    schedule = None
    if rows.schedule is not None:
        sched_id, _, reducer, sched_name, at_col = rows.schedule
        schedule = ScheduleSchema(sched_id, table_id, reducer, sched_name, at_col)
    schema = TableSchema(
        table_id=table_id,
        name=name,
        columns=tuple(columns),
        indexes=tuple(sorted(indexes, key=lambda i: i.index_id)),
        constraints=tuple(sorted(constraints, key=lambda c: c.constraint_id)),
        sequences=tuple(sorted(sequences, key=lambda s: s.sequence_id)),
        primary_key=pk[0] if pk else None,
        public=access == "public",
        is_system=table_type == "system",
        schedule=schedule,
    )
    _check_schema(schema)
    return schema


def _check_schema(schema: TableSchema) -> None:
    n = len(schema.columns)
    for index in schema.indexes:
        if not index.columns or any(not 0 <= c < n for c in index.columns):
            raise SchemaError(f"index `{index.name}` of `{schema.name}` refers to a missing column")
    for constraint in schema.constraints:
        if not any(i.columns == constraint.columns for i in schema.indexes):
            raise SchemaError(
                f"unique constraint `{constraint.name}` of `{schema.name}` has no index on its columns"
            )
    for seq in schema.sequences:
        if not 0 <= seq.col_pos < n:
            raise SchemaError(f"sequence `{seq.name}` of `{schema.name}` refers to a missing column")
    if schema.primary_key is not None and (schema.primary_key,) not in {
        c.columns for c in schema.constraints
    }:
        raise SchemaError(f"primary key of `{schema.name}` is not backed by a unique constraint")
