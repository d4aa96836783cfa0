"""The validated definition of a module: its types, tables, reducers and row-level security rules.

A ``ModuleDef`` is built from what a program declared (``builder.build_module_def``) and is what everything else
works from: the runtime (table handles, reducer calls), the RawModuleDef v9 served to clients (``rawdef``),
migrations (``migrate``) and the datastore tables (``TableDef.to_datastore_def``).

Column types come in two forms: ``ColumnDef.raw_type`` as in the module's typespace (named types are refs, as
clients see them) and ``ColumnDef.type`` with every ref inlined, which is what the datastore stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spacetimedb import datastore as ds
from spacetimedb.sats import AlgebraicType, PrimitiveType, ProductType, Typespace

if TYPE_CHECKING:
    from .handlers import HttpHandlerDef, HttpRouteDef
    from .views import ViewDef

Converter = Callable[[Any], Any]

LIFECYCLE_INIT = "init"
LIFECYCLE_CONNECTED = "client_connected"
LIFECYCLE_DISCONNECTED = "client_disconnected"

# Method names of a table handle (``ctx.db.<table>``) that an index accessor must not shadow.
TABLE_HANDLE_METHODS = frozenset({"insert", "delete", "iter", "count"})

_I128_MAX = (1 << 127) - 1


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True, slots=True)
class ColumnDef:
    pos: int
    name: str
    type: AlgebraicType  # refs inlined: what the datastore stores
    raw_type: AlgebraicType  # as in the module typespace
    default: Any = NO_DEFAULT  # canonical value used when a migration adds this column
    accessor: str = ""  # the field's name in module code, when it differs from ``name`` (Column(name=...))

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    @property
    def accessor_name(self) -> str:
        return self.accessor or self.name


@dataclass(frozen=True, slots=True)
class IndexDef:
    name: str  # generated: {table}_{cols}_idx_{algorithm}
    accessor_name: str  # ctx.db.<table>.<accessor_name>
    algorithm: str  # "btree" | "hash"
    columns: tuple[int, ...]
    unique: bool = False


@dataclass(frozen=True, slots=True)
class ConstraintDef:
    name: str  # generated: {table}_{cols}_key
    columns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SequenceDef:
    name: str  # generated: {table}_{col}_seq
    column: int
    start: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    increment: int = 1


@dataclass(frozen=True, slots=True)
class ScheduleDef:
    name: str  # generated: {table}_sched
    reducer_name: str
    at_column: int  # the ScheduleAt column
    id_column: int  # the u64 primary key, auto-inc


@dataclass(eq=False, slots=True)
class TableDef:
    name: str  # the canonical name: SQL, clients and the database use it
    type_name: str  # the row type's exported name
    product_type_ref: int
    columns: tuple[ColumnDef, ...]
    indexes: tuple[IndexDef, ...]
    constraints: tuple[ConstraintDef, ...]
    sequences: tuple[SequenceDef, ...]
    primary_key: int | None
    public: bool
    schedule: ScheduleDef | None
    row_class: type
    is_event: bool = False  # rows go to subscribers at commit and are never stored
    # per column: user value -> canonical value (None: no conversion), and back
    column_to_canonical: tuple[Converter | None, ...] = ()
    column_from_canonical: tuple[Converter | None, ...] = ()
    location: str = ""
    accessor: str = (
        ""  # ctx.db.<accessor>, when it differs from ``name`` (@table(accessor=...)); SQL takes both
    )

    @property
    def accessor_name(self) -> str:
        return self.accessor or self.name

    def column_named(self, name: str) -> ColumnDef | None:
        """The column with canonical name or accessor ``name``."""
        return next((c for c in self.columns if name in (c.name, c.accessor_name)), None)

    @property
    def row_type(self) -> ProductType:
        """The row type with refs inlined."""
        return ProductType.of(*((c.name, c.type) for c in self.columns))

    def column(self, name: str) -> ColumnDef:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table `{self.name}` has no column `{name}`")

    def index(self, name: str) -> IndexDef:
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(f"table `{self.name}` has no index `{name}`")

    def column_names(self, columns: tuple[int, ...]) -> list[str]:
        return [self.columns[c].name for c in columns]

    def unique_column_sets(self) -> list[tuple[int, ...]]:
        return [c.columns for c in self.constraints]

    def to_datastore_def(self, sequence_starts: dict[int, int] | None = None) -> ds.TableDef:
        """The datastore definition that creates this table (``sequence_starts``: column -> first value, to
        continue a sequence when a migration rebuilds the table)."""
        starts = sequence_starts or {}
        return ds.TableDef(
            name=self.name,
            columns=[(c.name, c.type) for c in self.columns],
            indexes=[ds.IndexDef(i.columns, i.name, i.algorithm) for i in self.indexes],
            unique_constraints=[(c.columns, c.name) for c in self.constraints],
            sequences=[self._datastore_sequence(s, starts.get(s.column)) for s in self.sequences],
            primary_key=self.primary_key,
            public=self.public,
            is_system=False,
            schedule=None
            if self.schedule is None
            else ds.ScheduleDef(self.schedule.reducer_name, self.schedule.at_column, self.schedule.name),
        )

    def _datastore_sequence(self, seq: SequenceDef, start: int | None) -> ds.SequenceDef:
        column_type = self.columns[seq.column].type
        assert isinstance(column_type, PrimitiveType)
        max_value = seq.max_value
        if max_value is None:
            max_value = min(column_type.integer_range()[1], _I128_MAX)
        min_value = seq.min_value if seq.min_value is not None else 1
        first = start if start is not None else seq.start
        return ds.SequenceDef(seq.column, seq.name, seq.increment, first, min_value, max_value)


@dataclass(eq=False, slots=True)
class ReducerDef:
    name: str
    params: ProductType  # named elements; refs into the module typespace
    lifecycle: str | None  # None, "init", "client_connected" or "client_disconnected"
    func: Callable[..., Any]
    # per argument: canonical value -> user value (None: no conversion), and back
    arg_from_canonical: tuple[Converter | None, ...] = ()
    arg_to_canonical: tuple[Converter | None, ...] = ()
    location: str = ""

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(e.name or str(i) for i, e in enumerate(self.params.elements))


@dataclass(eq=False, slots=True)
class ProcedureDef:
    name: str
    params: ProductType  # named elements; refs into the module typespace
    return_type: AlgebraicType  # a ref into the module typespace for named types; the unit product for None
    func: Callable[..., Any]
    arg_from_canonical: tuple[Converter | None, ...] = ()
    arg_to_canonical: tuple[Converter | None, ...] = ()
    return_to_canonical: Converter | None = None
    location: str = ""
    lifecycle: None = None  # procedures are never lifecycle functions (shared argument handling reads it)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(e.name or str(i) for i, e in enumerate(self.params.elements))


@dataclass(frozen=True, slots=True)
class TypeDef:
    """A named type clients see: a table's row type, a ``@type`` record, an enum or a named sum."""

    name: str
    ref: int
    scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RowLevelSecurityDef:
    sql: str
    table: str  # the table whose rows the rule filters


@dataclass(eq=False, slots=True)
class ModuleDef:
    typespace: Typespace
    types: list[TypeDef] = field(default_factory=list)
    tables: dict[str, TableDef] = field(default_factory=dict)
    reducers: dict[str, ReducerDef] = field(default_factory=dict)
    row_level_security: list[RowLevelSecurityDef] = field(default_factory=list)
    procedures: dict[str, ProcedureDef] = field(default_factory=dict)
    views: dict[str, ViewDef] = field(default_factory=dict)
    http_handlers: dict[str, HttpHandlerDef] = field(default_factory=dict)
    http_routes: list[HttpRouteDef] = field(default_factory=list)
    # a foreign (WASM, JS) module's own names for its tables and indexes, where they differ from the canonical
    # ones (RawModuleDef V10 converts case and generates index names): source name -> canonical name
    table_aliases: dict[str, str] = field(default_factory=dict)
    index_aliases: dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> TableDef:
        found = self.tables.get(name)
        if found is None:
            raise KeyError(f"the module has no table `{name}`")
        return found

    def reducer(self, name: str) -> ReducerDef | None:
        return self.reducers.get(name)

    def lifecycle_reducer(self, lifecycle: str) -> ReducerDef | None:
        """The reducer for ``"init"``, ``"client_connected"`` or ``"client_disconnected"``, if the module has one."""
        for reducer in self.reducers.values():
            if reducer.lifecycle == lifecycle:
                return reducer
        return None

    def event_tables(self) -> list[TableDef]:
        return [t for t in self.tables.values() if t.is_event]

    def scheduled_tables(self) -> list[TableDef]:
        return [t for t in self.tables.values() if t.schedule is not None]

    def datastore_table_defs(self) -> list[ds.TableDef]:
        """Definitions of every table, sorted by name (the order a first publish creates them in)."""
        return [self.tables[name].to_datastore_def() for name in sorted(self.tables)]

    def type_name(self, ref: int) -> str | None:
        for type_def in self.types:
            if type_def.ref == ref:
                return type_def.name
        return None

    # -- RawModuleDef v9 -------------------------------------------------------------------------------------

    def to_raw_v9(self) -> Any:
        """This definition as a canonical SATS value of ``rawdef.RAW_MODULE_DEF_V9``."""
        from .rawdef import raw_module_def_v9

        return raw_module_def_v9(self)

    def raw_v9_json(self, event_flags: bool = False) -> Any:
        """The JSON that ``GET /v1/database/:name/schema?version=9`` serves. V9 cannot say which tables are event
        tables (V10's ``is_event``) nor which column keys a view's rows (V10's ``ViewPrimaryKeys`` section); with
        ``event_flags`` event tables' entries carry ``"is_event": true`` and keyed views' ``View`` exports
        ``"primary_key": [column]`` (as a table's) for this project's own code generator (SpacetimeDB's CLI
        would refuse the unknown keys, so they are never sent unasked)."""
        from .rawdef import raw_v9_json

        raw = raw_v9_json(self)
        if event_flags:
            events = {table.name for table in self.event_tables()}
            for table in raw["tables"]:
                if table["name"] in events:
                    table["is_event"] = True
            for export in raw["misc_exports"]:
                view = self.views.get(export.get("View", {}).get("name", ""))
                if view is not None and view.primary_key is not None:
                    export["View"]["primary_key"] = [view.primary_key]
        return raw

    def raw_v9_bsatn(self) -> bytes:
        from .rawdef import raw_v9_bsatn

        return raw_v9_bsatn(self)
