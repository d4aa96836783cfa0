"""Build and validate a ``ModuleDef`` from what a program declared (a ``Registry``).

Every problem is collected (not just the first) and reported together in one ``ModuleError``, each naming its
declaration, e.g. "table `user` (class User at chat.py:12): column `score`: ...".
"""

from __future__ import annotations

import functools
import inspect
import keyword
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from spacetimedb.datastore.schema import SYSTEM_TABLE_NAMES
from spacetimedb.sats import (
    SCHEDULE_AT,
    U64,
    AlgebraicType,
    EncodeError,
    PrimitiveType,
    ProductType,
    ProductTypeElement,
    RefType,
    SumType,
    check_value,
    special_kind,
)

from .api import ProcedureDecl, ReducerDecl, Registry, TableDecl
from .context import ProcedureContext, ReducerContext
from .errors import ModuleError
from .handlers import build_http
from .markers import AutoInc, ColumnMarker, IndexKind, IndexSpec, PrimaryKey, Unique
from .moduledef import (
    NO_DEFAULT,
    TABLE_HANDLE_METHODS,
    ColumnDef,
    ConstraintDef,
    IndexDef,
    ModuleDef,
    ProcedureDef,
    ReducerDef,
    RowLevelSecurityDef,
    ScheduleDef,
    SequenceDef,
    TableDef,
    TypeDef,
)
from .records import record_info
from .rls import RlsSyntaxError, rls_table
from .typemap import Mapped, ResolvedField, TypeMapper, TypeMappingError, describe, type_hints
from .views import ViewDecl, ViewDef, build_view

F = TypeVar("F")
_FILTERABLE_SPECIALS = ("identity", "connection_id", "timestamp", "time_duration", "uuid")


class _Problem(Exception):
    """One validation problem inside a declaration; the builder adds which declaration."""


def snake_case(name: str) -> str:
    """``User`` -> ``user``, ``PlayerState`` -> ``player_state``, ``HTTPRequest`` -> ``http_request``."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    spaced = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", spaced)
    return spaced.lower()


def _check_identifier(what: str, name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise _Problem(f"{what} `{name}` is not a valid identifier")


def is_filterable(ty: AlgebraicType) -> bool:
    """Whether values of ``ty`` (refs inlined) can be keys of a primary key, unique constraint or index."""
    if isinstance(ty, PrimitiveType):
        return not ty.is_float
    kind = special_kind(ty)
    if kind in _FILTERABLE_SPECIALS:
        return True
    if kind is None and isinstance(ty, SumType):
        return ty.is_simple_enum() and bool(ty.variants)
    return False


@dataclass(slots=True)
class _Builder:
    registry: Registry
    mapper: TypeMapper
    problems: list[str] = field(default_factory=list)
    tables: dict[str, TableDef] = field(default_factory=dict)
    table_decls: dict[str, TableDecl] = field(default_factory=dict)
    reducers: dict[str, ReducerDef] = field(default_factory=dict)
    procedures: dict[str, ProcedureDef] = field(default_factory=dict)
    global_names: dict[str, str] = field(default_factory=dict)  # table/index/constraint/sequence names
    views: dict[str, ViewDef] = field(default_factory=dict)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # -- tables ---------------------------------------------------------------------------------------------

    def add_table(self, decl: TableDecl) -> None:
        cls = decl.cls
        name = decl.name or decl.accessor or snake_case(cls.__name__)
        where = f"table `{name}` (class {cls.__qualname__} at {decl.location})"
        try:
            table = self.build_table(name, decl)
        except _Problem as exc:
            self.problem(where, str(exc))
            return
        except TypeMappingError as exc:
            self.problem(where, str(exc))
            return
        if name in self.tables:
            self.problem(
                where, f"duplicate table name `{name}` (also declared at {self.tables[name].location})"
            )
            return
        if table.accessor_name != name and table.accessor_name in self.global_names:
            self.problem(
                where,
                f"the accessor `{table.accessor_name}` is already used by table `{self.global_names[table.accessor_name]}`",
            )
        for global_name in [
            name,
            *([table.accessor_name] if table.accessor_name != name else []),
            *(i.name for i in table.indexes),
            *(c.name for c in table.constraints),
        ]:
            owner = self.global_names.get(global_name)
            if owner is not None and owner != name:
                self.problem(where, f"the name `{global_name}` is already used by table `{owner}`")
            self.global_names[global_name] = name
        self.tables[name] = table
        self.table_decls[name] = decl

    def build_table(self, name: str, decl: TableDecl) -> TableDef:
        _check_identifier("table name", name)
        if decl.accessor is not None:
            _check_identifier("table accessor", decl.accessor)
        if name in SYSTEM_TABLE_NAMES:
            raise _Problem(f"`{name}` is the name of a system table")
        type_mapped = self.mapper.map(decl.cls)
        assert isinstance(type_mapped.type, RefType)
        fields = self.mapper.record_fields(decl.cls)
        if not fields:
            raise _Problem("a table needs at least one column")
        info = record_info(decl.cls)
        assert info is not None
        columns: list[ColumnDef] = []
        errors: list[str] = []
        seen: set[str] = set()
        for pos, resolved in enumerate(fields):
            for column_name in {resolved.name, resolved.canonical_name}:
                if column_name in seen:
                    errors.append(f"duplicate column `{column_name}`")
                seen.add(column_name)
            try:
                columns.append(self.build_column(pos, resolved, info.defaults))
            except (_Problem, TypeMappingError) as exc:
                errors.append(f"column `{resolved.name}`: {exc}")
        if errors:
            raise _Problem("; ".join(errors))
        flags = _ColumnFlags.collect(fields, columns)
        indexes = self.build_indexes(name, decl, columns, flags)
        constraints = tuple(ConstraintDef(f"{name}_{columns[c].name}_key", (c,)) for c in flags.unique)
        sequences = tuple(SequenceDef(f"{name}_{columns[c].name}_seq", c) for c in flags.auto_inc)
        schedule = self.build_schedule(name, decl, columns, flags)
        return TableDef(
            name=name,
            type_name=self.mapper.name_of(type_mapped.type.index),
            product_type_ref=type_mapped.type.index,
            columns=tuple(columns),
            indexes=indexes,
            constraints=constraints,
            sequences=sequences,
            primary_key=flags.primary_key,
            public=decl.public,
            schedule=schedule,
            row_class=decl.cls,
            is_event=decl.event,
            column_to_canonical=tuple(f.mapped.to_canonical for f in fields),
            column_from_canonical=tuple(f.mapped.from_canonical for f in fields),
            location=decl.location,
            accessor=decl.accessor if decl.accessor not in (None, name) else "",
        )

    def build_column(self, pos: int, resolved: ResolvedField, defaults: dict[str, Any]) -> ColumnDef:
        try:
            inline = self.mapper.inline(resolved.mapped.type)
        except TypeMappingError as exc:
            raise _Problem(f"{exc} and cannot be stored in a table") from None
        for marker in resolved.markers:
            if isinstance(marker, IndexSpec) and marker.columns:
                raise _Problem(
                    f"{describe(marker)}: an index with columns belongs in @table(indexes=[...]); "
                    "on a column write Index.btree"
                )
        markers = {m for m in resolved.markers if isinstance(m, ColumnMarker)}
        if PrimaryKey in markers and not is_filterable(inline):
            raise _Problem(f"a primary key cannot have type {_show(inline)} (floats, arrays, options, ...)")
        if Unique in markers and not is_filterable(inline):
            raise _Problem(f"a unique column cannot have type {_show(inline)}")
        if AutoInc in markers and not (isinstance(inline, PrimitiveType) and inline.is_integer):
            raise _Problem(f"AutoInc needs an integer column, not {_show(inline)}")
        default = NO_DEFAULT
        if resolved.name in defaults:
            default = self.column_default(resolved, inline, markers, defaults[resolved.name])
        canonical = resolved.canonical_name
        if canonical != resolved.name:
            _check_identifier("column name", canonical)
        accessor = resolved.name if canonical != resolved.name else ""
        return ColumnDef(pos, canonical, inline, resolved.mapped.type, default, accessor)

    def column_default(
        self, resolved: ResolvedField, inline: AlgebraicType, markers: set[ColumnMarker], value: Any
    ) -> Any:
        if AutoInc in markers:
            if value != 0:
                raise _Problem(
                    "the default of an AutoInc column can only be 0 (meaning: fill from the sequence)"
                )
            return NO_DEFAULT  # a constructor convenience, not a column default
        if PrimaryKey in markers or Unique in markers:
            raise _Problem("a primary key or unique column cannot have a default value")
        convert = resolved.mapped.to_canonical
        try:
            canonical = convert(value) if convert is not None else value
            check_value(inline, canonical)
        except (EncodeError, ValueError, TypeError, AttributeError) as exc:
            raise _Problem(f"default value {value!r} does not fit the column's type: {exc}") from None
        return canonical

    def build_indexes(
        self, table: str, decl: TableDecl, columns: list[ColumnDef], flags: _ColumnFlags
    ) -> tuple[IndexDef, ...]:
        by_name = {c.accessor_name: c.pos for c in columns} | {c.name: c.pos for c in columns}
        declared: list[tuple[str, tuple[int, ...], str]] = []  # (algorithm, columns, accessor)
        for spec in decl.indexes:
            missing = [c for c in spec.columns if c not in by_name]
            if missing:
                raise _Problem(f"index {_spec_text(spec)} refers to unknown column(s) {', '.join(missing)}")
            cols = tuple(by_name[c] for c in spec.columns)
            if len(set(cols)) != len(cols):
                raise _Problem(f"index {_spec_text(spec)} names a column twice")
            declared.append((spec.algorithm, cols, spec.name or "_".join(spec.columns)))
        for pos, algorithm, accessor in flags.column_indexes:
            declared.append((algorithm, (pos,), accessor or columns[pos].accessor_name))
        for _, cols, _ in declared:
            for c in cols:
                if not is_filterable(columns[c].type):
                    raise _Problem(
                        f"column `{columns[c].name}` of type {_show(columns[c].type)} cannot be indexed"
                    )
        indexes: list[IndexDef] = []
        unique_sets = {(c,) for c in flags.unique}
        for algorithm, cols, accessor in declared:
            name = f"{table}_{'_'.join(columns[c].name for c in cols)}_idx_{algorithm}"
            indexes.append(IndexDef(name, accessor, algorithm, cols, cols in unique_sets))
        covered = {i.columns for i in indexes if i.unique}
        for c in flags.unique:
            if (c,) not in covered:
                column = columns[c].name
                indexes.append(IndexDef(f"{table}_{column}_idx_btree", column, "btree", (c,), True))
        indexes.sort(key=lambda i: not i.unique)  # stable: unique accessors first, as SpacetimeDB orders them
        names: set[str] = set()
        accessors: set[str] = set()
        for index in indexes:
            if index.name in names:
                raise _Problem(
                    f"duplicate index `{index.name}` on [{', '.join(_cols(columns, index.columns))}]"
                )
            names.add(index.name)
            _check_identifier("index accessor", index.accessor_name)
            if index.accessor_name in accessors:
                raise _Problem(f"two indexes have the accessor name `{index.accessor_name}`")
            if index.accessor_name.startswith("_"):
                raise _Problem(
                    f"the index accessor `{index.accessor_name}` must not start with an underscore"
                )
            if index.accessor_name in TABLE_HANDLE_METHODS:
                raise _Problem(
                    f"the index accessor `{index.accessor_name}` would hide ctx.db.{table}.{index.accessor_name}(); "
                    "give the index another name"
                )
            accessors.add(index.accessor_name)
        return tuple(indexes)

    def build_schedule(
        self, table: str, decl: TableDecl, columns: list[ColumnDef], flags: _ColumnFlags
    ) -> ScheduleDef | None:
        if decl.scheduled is None:
            return None
        if decl.event:
            raise _Problem("an event table cannot be a scheduled table (its rows are never stored)")
        at_col = _schedule_at_column(decl.scheduled_at, columns)
        id_col = columns[flags.primary_key] if flags.primary_key is not None else None
        if id_col is None or id_col.type != U64:
            # as upstream: the primary key is the schedule's id; it need not be called scheduled_id
            raise _Problem(
                "a scheduled table needs a `u64` primary key, e.g. `scheduled_id: Annotated[u64, PrimaryKey, AutoInc]`"
            )
        return ScheduleDef(f"{table}_sched", decl.scheduled, at_col.pos, id_col.pos)

    # -- reducers -------------------------------------------------------------------------------------------

    def add_reducer(self, decl: ReducerDecl) -> None:
        where = f"reducer `{decl.name}` (at {decl.location})"
        build = functools.partial(self.build_reducer, decl)
        reducer = self.build_function("reducer", decl.name, where, self.reducers, build)
        if reducer is None:
            return
        if reducer.lifecycle is not None:
            other = next((r for r in self.reducers.values() if r.lifecycle == reducer.lifecycle), None)
            if other is not None:
                self.problem(where, f"a second `{reducer.lifecycle}` reducer (`{other.name}` is already one)")
                return
        self.reducers[decl.name] = reducer

    def build_function(
        self, kind: str, name: str, where: str, declared: dict[str, Any], build: Callable[[], F]
    ) -> F | None:
        """``build()``'s definition of a reducer or procedure, or None after recording why it is invalid."""
        try:
            _check_identifier(f"{kind} name", name)
            built = build()
        except (_Problem, TypeMappingError) as exc:
            self.problem(where, str(exc))
            return None
        if name in declared:
            self.problem(where, f"duplicate {kind} name (also declared at {declared[name].location})")
            return None
        return built

    def build_reducer(self, decl: ReducerDecl) -> ReducerDef:
        elements, mapped = self.build_params(decl.func, ReducerContext)
        if decl.lifecycle is not None and elements:
            raise _Problem(f"a `{decl.lifecycle}` reducer takes only the ReducerContext")
        return ReducerDef(
            name=decl.name,
            params=ProductType(tuple(elements)),
            lifecycle=decl.lifecycle,
            func=decl.func,
            arg_from_canonical=tuple(m.from_canonical for m in mapped),
            arg_to_canonical=tuple(m.to_canonical for m in mapped),
            location=decl.location,
        )

    def build_params(self, func: Any, context: type) -> tuple[list[ProductTypeElement], list[Mapped]]:
        """The parameters after the context (``context``, the first one), with their mapped types."""
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise _Problem(f"cannot read its signature: {exc}") from None
        params = list(signature.parameters.values())
        for param in params:
            if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                raise _Problem(
                    f"parameter `{param.name}`: *args, **kwargs and keyword-only parameters are not allowed"
                )
        kind = context.__name__
        if not params:
            raise _Problem(f"the first parameter must be the {kind} (ctx: {kind})")
        hints = _parameter_hints(func, params[0].name)
        first = hints.get(params[0].name)
        if first is not None and first is not context and typing.get_origin(first) is not context:
            raise _Problem(
                f"the first parameter must be the {kind}, but `{params[0].name}` is annotated {describe(first)}"
            )
        elements: list[ProductTypeElement] = []
        mapped: list[Mapped] = []
        for param in params[1:]:
            if param.name not in hints:
                raise _Problem(f"parameter `{param.name}` needs a type annotation")
            if hints[param.name] in (ReducerContext, ProcedureContext):
                raise _Problem(f"parameter `{param.name}`: only the first parameter is the {kind}")
            try:
                param_mapped = self.mapper.map(hints[param.name])
            except TypeMappingError as exc:
                raise _Problem(f"parameter `{param.name}`: {exc}") from None
            elements.append(ProductTypeElement(param.name, param_mapped.type))
            mapped.append(param_mapped)
        return elements, mapped

    # -- procedures -----------------------------------------------------------------------------------------

    def add_procedure(self, decl: ProcedureDecl) -> None:
        where = f"procedure `{decl.name}` (at {decl.location})"
        build = functools.partial(self.build_procedure, decl)
        procedure = self.build_function("procedure", decl.name, where, self.procedures, build)
        if procedure is None:
            return
        if decl.name in self.reducers:
            self.problem(
                where, f"a reducer has the same name (declared at {self.reducers[decl.name].location})"
            )
            return
        self.procedures[decl.name] = procedure

    def build_procedure(self, decl: ProcedureDecl) -> ProcedureDef:
        elements, mapped = self.build_params(decl.func, ProcedureContext)
        hints = type_hints(decl.func)
        if "return" not in hints:
            raise _Problem("needs a return annotation (`-> None` when it returns nothing)")
        returned = hints["return"]
        if returned is None or returned is type(None):
            return_type: AlgebraicType = ProductType(())
            to_canonical = None
        else:
            try:
                return_mapped = self.mapper.map(returned)
            except TypeMappingError as exc:
                raise _Problem(f"return type: {exc}") from None
            return_type, to_canonical = return_mapped.type, return_mapped.to_canonical
        return ProcedureDef(
            name=decl.name,
            params=ProductType(tuple(elements)),
            return_type=return_type,
            func=decl.func,
            arg_from_canonical=tuple(m.from_canonical for m in mapped),
            arg_to_canonical=tuple(m.to_canonical for m in mapped),
            return_to_canonical=to_canonical,
            location=decl.location,
        )

    # -- views ----------------------------------------------------------------------------------------------

    def add_view(self, decl: ViewDecl) -> None:
        kind = "anonymous view" if decl.anonymous else "view"
        where = f"{kind} `{decl.name}` (at {decl.location})"
        try:
            _check_identifier("view name", decl.name)
            view = build_view(decl, len(self.views), self.mapper)
        except (_Problem, TypeMappingError, ValueError) as exc:
            self.problem(where, str(exc))
            return
        clash = self.views.get(decl.name)
        if clash is not None:
            self.problem(where, f"duplicate view name (also declared at {clash.location})")
        elif decl.name in self.global_names:
            self.problem(
                where, f"the name `{decl.name}` is already used by table `{self.global_names[decl.name]}`"
            )
        elif decl.name in SYSTEM_TABLE_NAMES:
            self.problem(where, f"`{decl.name}` is the name of a system table")
        else:
            self.views[decl.name] = view

    # -- cross-checks ---------------------------------------------------------------------------------------

    def check_schedules(self) -> None:
        """A scheduled table's function is a reducer or (as upstream allows) a procedure, taking the row."""
        for table in self.tables.values():
            schedule = table.schedule
            if schedule is None:
                continue
            where = f"table `{table.name}` (class {table.row_class.__qualname__} at {table.location})"
            function: ReducerDef | ProcedureDef | None = self.reducers.get(schedule.reducer_name)
            kind, context = "reducer", "ReducerContext"
            if function is None:
                function = self.procedures.get(schedule.reducer_name)
                kind, context = "procedure", "ProcedureContext"
            if function is None:
                self.problem(
                    where, f"scheduled reducer or procedure `{schedule.reducer_name}` does not exist"
                )
                continue
            params = function.params.elements
            if (
                function.lifecycle is not None
                or len(params) != 1
                or params[0].type != RefType(table.product_type_ref)
            ):
                self.problem(
                    where,
                    f"scheduled {kind} `{function.name}` must take (ctx: {context}, "
                    f"row: {table.row_class.__name__}), not ({_params_text(function)})",
                )

    def check_types(self) -> None:
        table_classes = {decl.cls for decl in self.registry.tables}
        names: dict[str, Any] = {}
        for named in self.mapper.named:
            previous = names.get(named.name)
            if previous is not None and previous is not named.source:
                self.problem(f"type `{named.name}`", "two different types have this name")
            names[named.name] = named.source
            if isinstance(named.source, type) and named.source not in table_classes:
                for resolved in self.mapper.mapped_fields(named.source):
                    if resolved.markers:
                        self.problem(
                            f"type `{named.name}`",
                            f"field `{resolved.name}`: column markers are only allowed in @table classes",
                        )

    def add_declared_types(self) -> None:
        for type_decl in self.registry.types:
            where = f"type `{type_decl.name}` (class {type_decl.cls.__qualname__} at {type_decl.location})"
            try:
                self.mapper.map(type_decl.cls)
            except TypeMappingError as exc:
                self.problem(where, str(exc))
        for sum_decl in self.registry.sums:
            where = f"type `{sum_decl.name}` (at {sum_decl.location})"
            try:
                self.mapper.map(_union_of(sum_decl.variants))
            except TypeMappingError as exc:
                self.problem(where, str(exc))

    def build_row_level_security(self) -> list[RowLevelSecurityDef]:
        rules: list[RowLevelSecurityDef] = []
        seen: set[str] = set()
        for rule in self.registry.row_level_security:
            where = f"client_visibility_filter (at {rule.location})"
            try:
                table_name = rls_table(rule.sql)
            except RlsSyntaxError as exc:
                self.problem(where, str(exc))
                continue
            table = self.tables.get(table_name)
            if table is None:
                self.problem(where, f"unknown table `{table_name}` in {rule.sql!r}")
                continue
            if not table.public:
                self.problem(
                    where, f"table `{table_name}` is private; row-level security applies to public tables"
                )
                continue
            if rule.sql in seen:
                self.problem(where, f"duplicate rule {rule.sql!r}")
                continue
            seen.add(rule.sql)
            rules.append(RowLevelSecurityDef(rule.sql, table_name))
        return rules


@dataclass(slots=True)
class _ColumnFlags:
    primary_key: int | None
    unique: list[int]  # includes the primary key
    auto_inc: list[int]
    column_indexes: list[tuple[int, str, str | None]]  # (column, algorithm, accessor name)

    @staticmethod
    def collect(fields: list[ResolvedField], columns: list[ColumnDef]) -> _ColumnFlags:
        flags = _ColumnFlags(None, [], [], [])
        problems = []
        for pos, resolved in enumerate(fields):
            markers = resolved.markers
            flag_markers = [m for m in markers if isinstance(m, ColumnMarker)]
            if len(flag_markers) != len({id(m) for m in flag_markers}):
                problems.append(f"column `{resolved.name}` repeats a marker")
            if PrimaryKey in markers:
                if flags.primary_key is not None:
                    problems.append(
                        f"two primary keys (`{columns[flags.primary_key].name}` and `{resolved.name}`)"
                    )
                flags.primary_key = pos
            if PrimaryKey in markers or Unique in markers:
                flags.unique.append(pos)
            if AutoInc in markers:
                flags.auto_inc.append(pos)
            for marker in markers:
                if isinstance(marker, IndexKind):
                    flags.column_indexes.append((pos, marker.algorithm, None))
                elif isinstance(marker, IndexSpec):
                    flags.column_indexes.append((pos, marker.algorithm, marker.name))
        if problems:
            raise _Problem("; ".join(problems))
        return flags


def _schedule_at_column(named: str | None, columns: list[ColumnDef]) -> ColumnDef:
    """The column holding when each row is due: the one ``scheduled_at=`` names, or the only ``ScheduleAt`` one."""
    if named is not None:
        found = next((c for c in columns if named in (c.name, c.accessor_name)), None)
        if found is None or found.type != SCHEDULE_AT:
            raise _Problem(f"scheduled_at={named!r} must name a column of type ScheduleAt")
        return found
    candidates = [c for c in columns if c.type == SCHEDULE_AT]
    if not candidates:
        raise _Problem("a scheduled table needs a column of type ScheduleAt, e.g. `scheduled_at: ScheduleAt`")
    if len(candidates) > 1:
        names = ", ".join(c.name for c in candidates)
        raise _Problem(
            f"several ScheduleAt columns ({names}): say which schedules the rows with scheduled_at='...'"
        )
    return candidates[0]


def _union_of(members: tuple[Any, ...]) -> Any:
    from typing import Union

    return Union[members]  # noqa: UP007


def _show(ty: AlgebraicType) -> str:
    from .pretty import format_type

    return format_type(ty)


def _cols(columns: list[ColumnDef], cols: tuple[int, ...]) -> list[str]:
    return [columns[c].name for c in cols]


def _spec_text(spec: IndexSpec) -> str:
    args = ", ".join(repr(c) for c in spec.columns)
    named = f", name={spec.name!r}" if spec.name else ""
    return f"Index.{spec.algorithm}({args}{named})"


def _params_text(function: ReducerDef | ProcedureDef) -> str:
    parts = ["ctx"]
    for element in function.params.elements:
        parts.append(f"{element.name}: {_show(element.type)}")
    return ", ".join(parts)


def build_module_def(registry: Registry) -> ModuleDef:
    """Validate everything ``registry`` holds and build the module definition; raises ``ModuleError``."""
    builder = _Builder(registry, TypeMapper(registry))
    for table_decl in registry.tables:
        builder.add_table(table_decl)
    for reducer_decl in registry.reducers:
        builder.add_reducer(reducer_decl)
    for procedure_decl in registry.procedures:
        builder.add_procedure(procedure_decl)
    for view_decl in registry.views:
        builder.add_view(view_decl)
    builder.add_declared_types()
    builder.check_schedules()
    builder.check_types()
    rules = builder.build_row_level_security()
    http_handlers, http_routes = build_http(registry.http_handlers, registry.http_routers, builder.problem)
    if builder.problems:
        count = len(builder.problems)
        header = "the module is invalid" if count == 1 else f"the module is invalid ({count} problems)"
        raise ModuleError(f"{header}:\n  " + "\n  ".join(builder.problems), list(builder.problems))
    mapper = builder.mapper
    return ModuleDef(
        typespace=mapper.typespace,
        types=[TypeDef(n.name, n.ref) for n in mapper.named],
        tables=builder.tables,
        reducers=builder.reducers,
        row_level_security=rules,
        procedures=builder.procedures,
        views=builder.views,
        http_handlers=http_handlers,
        http_routes=http_routes,
    )


def _parameter_hints(func: Any, context_parameter: str) -> dict[str, Any]:
    """The resolved annotations of ``func``. The context's own annotation may name a type that exists only for
    type checkers (``ctx: ReducerContext[Db]`` with ``Db`` from the generated ``<module>_db.pyi``, imported
    under ``TYPE_CHECKING``): when it cannot be evaluated, it is left out rather than refused."""
    try:
        return type_hints(func)
    except TypeMappingError:
        annotations = getattr(func, "__annotations__", None)
        if (
            not isinstance(func, types.FunctionType)
            or not annotations
            or context_parameter not in annotations
        ):
            raise
    without_context = types.FunctionType(func.__code__, func.__globals__, func.__name__)
    without_context.__annotations__ = {k: v for k, v in annotations.items() if k != context_parameter}
    return type_hints(without_context)
