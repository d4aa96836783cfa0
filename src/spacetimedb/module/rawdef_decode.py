"""Reading a module's own description: BSATN ``RawModuleDef`` V10 or V9 into a validated ``ModuleDef``.

Modules built by SpacetimeDB's toolchains (Rust, C#, TypeScript) describe themselves with ``RawModuleDef``
(``crates/lib/src/db/raw_def/v10.rs``, ``v9.rs``): the enum tag (1 V9, 2 V10), then the definition. This file
decodes both and validates them as SpacetimeDB does (``crates/schema/src/def/validate/v10.rs``, ``v9.rs``), so
that every name and every id matches what the module's own library computed:

- V10 applies the module's case-conversion policy (default snake_case): table, column, reducer names and
  product field names become snake_case, sum variants camelCase and type names PascalCase, unless an explicit
  name says otherwise; the source names remain aliases (``ModuleDef.table_aliases`` / ``index_aliases``, which
  ``table_id_from_name`` and ``index_id_from_name`` accept). V9 converts nothing.
- Generated names use the canonical table and column names: index ``{table}_{cols}_idx_{algo}``, unique
  constraint ``{table}_{cols}_key``, sequence ``{table}_{col}_seq``, schedule ``{table}_sched``.
- A reducer's id is its position in the module's reducer list, so reducers keep their declared order; a
  procedure's likewise among procedures; a view keeps the number the program gave it (``ViewDef.call_id``,
  counted apart for per-caller and anonymous views) and gets a host index of its own.

What the server cannot serve (HTTP handlers and routes, submodules, private functions, views with parameters,
RawModuleDef V8) is refused here, naming the exact piece, so nothing is accepted and then failed at call time.
The functions are left for the caller to bind (``func`` raises until then).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spacetimedb.sats import (
    BOOL,
    BYTES,
    SCHEDULE_AT,
    STRING,
    U16,
    U32,
    U64,
    AlgebraicType,
    ArrayType,
    DecodeError,
    PrimitiveType,
    ProductType,
    ProductTypeElement,
    RecursiveTypeError,
    RefType,
    SumType,
    SumTypeVariant,
    Typespace,
    codec,
)
from spacetimedb.sats.meta import ALGEBRAIC_TYPE_REF, META_TYPESPACE, PRODUCT_TYPE_REF, type_from_value

from .casing import camel_case, pascal_case, snake_case
from .errors import ModuleError
from .moduledef import (
    LIFECYCLE_CONNECTED,
    LIFECYCLE_DISCONNECTED,
    LIFECYCLE_INIT,
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
from .rawdef import (
    COL_LIST,
    LIFECYCLE,
    OPT_STRING,
    RAW_CONSTRAINT_DEF,
    RAW_INDEX_ALGORITHM,
    RAW_MODULE_DEF_V9,
    RAW_SEQUENCE_DEF,
    RAW_TYPESPACE,
    TABLE_ACCESS,
    TABLE_TYPE,
)
from .records import RecordInfo
from .rls import RlsSyntaxError, rls_table
from .views import LIST, OPTIONAL, ViewDef, primary_key_position

# ---- the V10 types (crates/lib/src/db/raw_def/v10.rs, fields in BSATN order) ----------------------------------

_RAW_V10_REF = RefType(3)  # RawModuleDefV10 itself, at position 3 of the typespace below (submodules nest it)
FUNCTION_VISIBILITY = SumType.of("Private", "ClientCallable")
CASE_CONVERSION_POLICY = SumType.of("None", "SnakeCase")
NAME_MAPPING = ProductType.of(("source_name", STRING), ("canonical_name", STRING))
EXPLICIT_NAME_ENTRY = SumType.of(("Table", NAME_MAPPING), ("Function", NAME_MAPPING), ("Index", NAME_MAPPING))
HTTP_METHOD = SumType.of(
    "Get", "Head", "Post", "Put", "Delete", "Connect", "Options", "Trace", "Patch", ("Extension", STRING)
)


def _source_named(v9: ProductType) -> ProductType:
    """A V9 definition whose first field, ``name``, V10 calls ``source_name`` (same BSATN, other JSON keys)."""
    first, *rest = v9.elements
    return ProductType((ProductTypeElement("source_name", first.type), *rest))


RAW_TABLE_DEF_V10 = ProductType.of(
    ("source_name", STRING),
    ("product_type_ref", U32),
    ("primary_key", COL_LIST),
    (
        "indexes",
        ArrayType(
            ProductType.of(
                ("source_name", OPT_STRING), ("accessor_name", OPT_STRING), ("algorithm", RAW_INDEX_ALGORITHM)
            )
        ),
    ),
    ("constraints", ArrayType(_source_named(RAW_CONSTRAINT_DEF))),
    ("sequences", ArrayType(_source_named(RAW_SEQUENCE_DEF))),
    ("table_type", TABLE_TYPE),
    ("table_access", TABLE_ACCESS),
    ("default_values", ArrayType(ProductType.of(("col_id", U16), ("value", BYTES)))),
    ("is_event", BOOL),
)
RAW_REDUCER_DEF_V10 = ProductType.of(
    ("source_name", STRING),
    ("params", PRODUCT_TYPE_REF),
    ("visibility", FUNCTION_VISIBILITY),
    ("ok_return_type", ALGEBRAIC_TYPE_REF),
    ("err_return_type", ALGEBRAIC_TYPE_REF),
)
RAW_PROCEDURE_DEF_V10 = ProductType.of(
    ("source_name", STRING),
    ("params", PRODUCT_TYPE_REF),
    ("return_type", ALGEBRAIC_TYPE_REF),
    ("visibility", FUNCTION_VISIBILITY),
)
RAW_VIEW_DEF_V10 = ProductType.of(
    ("source_name", STRING),
    ("index", U32),
    ("is_public", BOOL),
    ("is_anonymous", BOOL),
    ("params", PRODUCT_TYPE_REF),
    ("return_type", ALGEBRAIC_TYPE_REF),
)
RAW_SCHEDULE_DEF_V10 = ProductType.of(
    ("source_name", OPT_STRING), ("table_name", STRING), ("schedule_at_col", U16), ("function_name", STRING)
)
RAW_LIFECYCLE_DEF_V10 = ProductType.of(("lifecycle_spec", LIFECYCLE), ("function_name", STRING))
RAW_TYPE_DEF_V10 = ProductType.of(
    ("source_name", ProductType.of(("scope", ArrayType(STRING)), ("source_name", STRING))),
    ("ty", U32),
    ("custom_ordering", BOOL),
)
RAW_MODULE_DEF_V10_SECTION = SumType.of(
    ("Typespace", ProductType.of(("types", ArrayType(ALGEBRAIC_TYPE_REF)))),
    ("Types", ArrayType(RAW_TYPE_DEF_V10)),
    ("Tables", ArrayType(RAW_TABLE_DEF_V10)),
    ("Reducers", ArrayType(RAW_REDUCER_DEF_V10)),
    ("Procedures", ArrayType(RAW_PROCEDURE_DEF_V10)),
    ("Views", ArrayType(RAW_VIEW_DEF_V10)),
    ("Schedules", ArrayType(RAW_SCHEDULE_DEF_V10)),
    ("LifeCycleReducers", ArrayType(RAW_LIFECYCLE_DEF_V10)),
    ("RowLevelSecurity", ArrayType(ProductType.of(("sql", STRING)))),
    ("CaseConversionPolicy", CASE_CONVERSION_POLICY),
    ("ExplicitNames", ProductType.of(("entries", ArrayType(EXPLICIT_NAME_ENTRY)))),
    ("HttpHandlers", ArrayType(ProductType.of(("source_name", STRING)))),
    (
        "HttpRoutes",
        ArrayType(
            ProductType.of(
                ("handler_function", STRING),
                ("method", SumType.of("Any", ("Method", HTTP_METHOD))),
                ("path", STRING),
            )
        ),
    ),
    (
        "ViewPrimaryKeys",
        ArrayType(ProductType.of(("view_source_name", STRING), ("columns", ArrayType(STRING)))),
    ),
    ("Submodules", ArrayType(ProductType.of(("namespace", STRING), ("module", _RAW_V10_REF)))),
)
RAW_MODULE_DEF_V10 = ProductType.of(("sections", ArrayType(RAW_MODULE_DEF_V10_SECTION)))
RAW_V10_TYPESPACE = Typespace([*META_TYPESPACE.types, RAW_MODULE_DEF_V10])

# the `RawModuleDef` enum
TAG_V8, TAG_V9, TAG_V10 = 0, 1, 2
SECTION_NAMES = tuple(v.name for v in RAW_MODULE_DEF_V10_SECTION.variants)
_LIFECYCLES = (LIFECYCLE_INIT, LIFECYCLE_CONNECTED, LIFECYCLE_DISCONNECTED)
_ALGORITHMS = ("btree", "hash", "direct")
_INTEGER_KINDS = frozenset(
    ("I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "I128", "U128", "I256", "U256")
)
_DIRECT_KINDS = frozenset(("U8", "U16", "U32", "U64"))


class ModuleDefDecodeError(ModuleError):
    """The module's description is not a RawModuleDef this server can read."""


def _is_special(ty: AlgebraicType) -> bool:
    """Option, Result and ScheduleAt sums and the special products (Identity, Timestamp, ...) keep their
    names whatever the policy."""
    if isinstance(ty, SumType):
        names = [v.name for v in ty.variants]
        return names in (["some", "none"], ["ok", "err"], ["Interval", "Time"])
    if isinstance(ty, ProductType):
        return len(ty.elements) == 1 and (ty.elements[0].name or "").startswith("__")
    return False


def _convert_type(
    ty: AlgebraicType, fields: Callable[[str], str], variants: Callable[[str], str]
) -> AlgebraicType:
    if _is_special(ty):
        return ty
    if isinstance(ty, ProductType):
        return ProductType(
            tuple(
                ProductTypeElement(
                    None if e.name is None else fields(e.name), _convert_type(e.type, fields, variants)
                )
                for e in ty.elements
            )
        )
    if isinstance(ty, SumType):
        return SumType(
            tuple(
                SumTypeVariant(
                    None if v.name is None else variants(v.name), _convert_type(v.type, fields, variants)
                )
                for v in ty.variants
            )
        )
    if isinstance(ty, ArrayType):
        return ArrayType(_convert_type(ty.elem, fields, variants))
    return ty


# ---- one shape for both versions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _RawIndex:
    source_name: str | None
    accessor_name: str | None
    algorithm: str
    columns: tuple[int, ...]


@dataclass(slots=True)
class _RawSequence:
    name: str | None
    column: int
    start: int | None
    min_value: int | None
    max_value: int | None
    increment: int


@dataclass(slots=True)
class _RawTable:
    source_name: str
    product_type_ref: int
    primary_key: list[int]
    indexes: list[_RawIndex]
    constraints: list[tuple[str | None, tuple[int, ...]]]
    sequences: list[_RawSequence]
    system: bool
    public: bool
    defaults: list[tuple[int, bytes]]
    is_event: bool = False


@dataclass(slots=True)
class _RawReducer:
    source_name: str
    params: ProductType
    private: bool = False
    returns: tuple[AlgebraicType, AlgebraicType] | None = None  # V10's (ok, err) types


@dataclass(slots=True)
class _RawProcedure:
    source_name: str
    params: ProductType
    return_type: AlgebraicType
    private: bool = False


@dataclass(slots=True)
class _RawView:
    source_name: str
    index: int
    public: bool
    anonymous: bool
    params: ProductType
    return_type: AlgebraicType


@dataclass(slots=True)
class _RawSchedule:
    name: str | None
    table: str
    at_column: int
    function: str


@dataclass(slots=True)
class _RawModule:
    version: int
    typespace: list[AlgebraicType]
    types: list[tuple[tuple[str, ...], str, int]] = field(default_factory=list)
    tables: list[_RawTable] = field(default_factory=list)
    reducers: list[_RawReducer] = field(default_factory=list)
    schedules: list[_RawSchedule] = field(default_factory=list)
    lifecycles: list[tuple[str, str]] = field(default_factory=list)  # (lifecycle, function source name)
    row_level_security: list[str] = field(default_factory=list)
    views: list[_RawView] = field(default_factory=list)
    procedures: list[_RawProcedure] = field(default_factory=list)
    view_primary_keys: list[tuple[str, list[str]]] = field(default_factory=list)  # (view, its key's columns)
    snake_case: bool = False
    explicit: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"Table": {}, "Function": {}, "Index": {}}
    )
    unserved: list[str] = field(default_factory=list)  # what the module uses that the server cannot serve


def _variant(value: Any) -> tuple[int, Any]:
    return value[0], value[1]


def _params(value: Any) -> ProductType:
    ty = type_from_value((2, value))
    assert isinstance(ty, ProductType)
    return ty


# ---- decoding -----------------------------------------------------------------------------------------------------


def decode_raw_module_def(data: bytes) -> _RawModule:
    """The ``RawModuleDef`` in ``data``; ``ModuleDefDecodeError`` when it is not one this server reads."""
    data = bytes(data)
    if not data:
        raise ModuleDefDecodeError("the module described itself with no bytes (an empty RawModuleDef)")
    tag, body = data[0], data[1:]
    try:
        if tag == TAG_V10:
            return _from_v10(codec(RAW_MODULE_DEF_V10, RAW_V10_TYPESPACE).decode(body))
        if tag == TAG_V9:
            return _from_v9(codec(RAW_MODULE_DEF_V9, RAW_TYPESPACE).decode(body))
    except DecodeError as exc:
        version = "V10" if tag == TAG_V10 else "V9"
        raise ModuleDefDecodeError(f"the module's RawModuleDef {version} does not decode: {exc}") from None
    if tag == TAG_V8:
        raise ModuleDefDecodeError(
            "the module describes itself with RawModuleDef V8 (SpacetimeDB 0.x bindings): only V9 and V10 are "
            "served; rebuild it with a current SpacetimeDB library"
        )
    raise ModuleDefDecodeError(f"unknown RawModuleDef version tag {tag} (V9 is 1, V10 is 2)")


def _from_v9(value: Any) -> _RawModule:
    typespace, tables, reducers, types, misc, rls = value
    raw = _RawModule(9, [type_from_value(t) for t in typespace[0]])
    raw.types = [(tuple(name[0]), name[1], ref) for name, ref, _ in types]
    for name, ref, pk, indexes, constraints, sequences, schedule, table_type, access in tables:
        raw.tables.append(
            _RawTable(
                name,
                ref,
                list(pk),
                [_index(index) for index in indexes],
                [(c_name, tuple(data[1][0])) for c_name, data in constraints],
                [_RawSequence(*sequence) for sequence in sequences],
                table_type[0] == 0,
                access[0] == 0,
                [],
            )
        )
        if schedule is not None:
            raw.schedules.append(_RawSchedule(schedule[0], name, schedule[2], schedule[1]))
    for name, params, lifecycle in reducers:
        raw.reducers.append(_RawReducer(name, _params(params)))
        if lifecycle is not None:
            raw.lifecycles.append((_LIFECYCLES[lifecycle[0]], name))
    for export in misc:
        tag, payload = _variant(export)
        if tag == 0:
            table_name, col_id, default = payload
            for table in raw.tables:
                if table.source_name == table_name:
                    table.defaults.append((col_id, bytes(default)))
        elif tag == 1:
            name, params, return_type = payload
            raw.procedures.append(_RawProcedure(name, _params(params), type_from_value(return_type)))
        else:
            raw.views.append(_raw_view(payload))
    raw.row_level_security = [rule[0] for rule in rls]
    return raw


def _raw_view(value: Any) -> _RawView:
    name, index, public, anonymous, params, return_type = value
    return _RawView(name, index, bool(public), bool(anonymous), _params(params), type_from_value(return_type))


def _v10_procedures(raw: _RawModule, payload: Any) -> None:
    raw.procedures = [
        _RawProcedure(name, _params(params), type_from_value(return_type), visibility[0] == 0)
        for name, params, return_type, visibility in payload
    ]


def _v10_views(raw: _RawModule, payload: Any) -> None:
    raw.views = [_raw_view(view) for view in payload]


def _index(value: Any) -> _RawIndex:
    name, accessor, algorithm = value
    tag, columns = _variant(algorithm)
    cols = (columns,) if tag == 2 else tuple(columns)
    return _RawIndex(name, accessor, _ALGORITHMS[tag], cols)


def _from_v10(value: Any) -> _RawModule:
    (sections,) = value
    raw = _RawModule(10, [], snake_case=True)
    seen: set[int] = set()
    for section in sections:
        tag, payload = _variant(section)
        if tag in seen:
            raise ModuleDefDecodeError(f"the RawModuleDef V10 has two {SECTION_NAMES[tag]} sections")
        seen.add(tag)
        _V10_SECTIONS[tag](raw, payload)
    return raw


def _v10_typespace(raw: _RawModule, payload: Any) -> None:
    raw.typespace = [type_from_value(t) for t in payload[0]]


def _v10_types(raw: _RawModule, payload: Any) -> None:
    raw.types = [(tuple(name[0]), name[1], ref) for name, ref, _ in payload]


def _v10_tables(raw: _RawModule, payload: Any) -> None:
    for name, ref, pk, indexes, constraints, sequences, table_type, access, defaults, is_event in payload:
        raw.tables.append(
            _RawTable(
                name,
                ref,
                list(pk),
                [_index(index) for index in indexes],
                [(c_name, tuple(data[1][0])) for c_name, data in constraints],
                [_RawSequence(*sequence) for sequence in sequences],
                table_type[0] == 0,
                access[0] == 0,
                [(col, bytes(v)) for col, v in defaults],
                bool(is_event),
            )
        )


def _v10_reducers(raw: _RawModule, payload: Any) -> None:
    for name, params, visibility, ok, err in payload:
        raw.reducers.append(
            _RawReducer(
                name, _params(params), visibility[0] == 0, (type_from_value(ok), type_from_value(err))
            )
        )


def _v10_unserved(what: str, why: str) -> Callable[[_RawModule, Any], None]:
    def note(raw: _RawModule, payload: Any) -> None:
        for item in payload:
            first = item[0]
            label = first if isinstance(first, str) else str(first)
            raw.unserved.append(f"{what} `{label}` ({why})")

    return note


def _v10_schedules(raw: _RawModule, payload: Any) -> None:
    raw.schedules = [_RawSchedule(name, table, col, function) for name, table, col, function in payload]


def _v10_lifecycles(raw: _RawModule, payload: Any) -> None:
    raw.lifecycles = [(_LIFECYCLES[spec[0]], function) for spec, function in payload]


def _v10_rls(raw: _RawModule, payload: Any) -> None:
    raw.row_level_security = [rule[0] for rule in payload]


def _v10_case_policy(raw: _RawModule, payload: Any) -> None:
    raw.snake_case = payload[0] == 1


def _v10_explicit_names(raw: _RawModule, payload: Any) -> None:
    kinds = ("Table", "Function", "Index")
    for entry in payload[0]:
        tag, (source, canonical) = _variant(entry)
        raw.explicit[kinds[tag]][source] = canonical


def _v10_view_primary_keys(raw: _RawModule, payload: Any) -> None:
    raw.view_primary_keys = [(view, list(columns)) for view, columns in payload]


def _v10_submodules(raw: _RawModule, payload: Any) -> None:
    for namespace, _ in payload:
        raw.unserved.append(f"submodule `{namespace}` (submodules are not served)")


_V10_SECTIONS: tuple[Callable[[_RawModule, Any], None], ...] = (
    _v10_typespace,
    _v10_types,
    _v10_tables,
    _v10_reducers,
    _v10_procedures,
    _v10_views,
    _v10_schedules,
    _v10_lifecycles,
    _v10_rls,
    _v10_case_policy,
    _v10_explicit_names,
    _v10_unserved("HTTP handler", "HTTP handlers of WASM and JavaScript modules are not served yet"),
    _v10_unserved("HTTP route", "HTTP routes of WASM and JavaScript modules are not served yet"),
    _v10_view_primary_keys,
    _v10_submodules,
)


# ---- validating -----------------------------------------------------------------------------------------------------


class _ForeignRow:
    """The row class of a foreign module's tables: rows stay canonical tuples (no Python code handles them)."""

    __slots__ = ()


def _row_class(type_name: str) -> type:
    cls = type(type_name, (_ForeignRow,), {"__slots__": ()})
    info = RecordInfo(cls, (), {})
    info.to_tuple = tuple
    info.from_tuple = tuple
    cls.__stdb_record__ = info  # type: ignore[attr-defined]  # what the runtime's table handles read
    return cls


def _not_bound(*_: Any) -> Any:
    raise ModuleError("this foreign reducer is not bound to an engine")


def _identifier_problem(name: str) -> str | None:
    if not name:
        return "an empty name"
    if not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
        return f"`{name}` is not an identifier (letters, digits and `_`, not starting with a digit)"
    return None


class _Validator:
    """Validates a ``_RawModule`` into a ``ModuleDef``, collecting every problem."""

    def __init__(self, raw: _RawModule) -> None:
        self.raw = raw
        self.problems: list[str] = []
        self.namespace: set[str] = set()
        self.typespace = Typespace(
            [self._convert(t) for t in raw.typespace] if raw.snake_case else list(raw.typespace)
        )

    def _convert(self, ty: AlgebraicType) -> AlgebraicType:
        return _convert_type(ty, snake_case, camel_case)

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def claim(self, name: str) -> None:
        """Add ``name`` to the module's one namespace of tables, indexes, constraints and sequences."""
        if name in self.namespace:
            self.problem(f"two definitions are named `{name}`")
        self.namespace.add(name)

    def canonical(self, kind: str, source: str) -> str:
        explicit = self.raw.explicit[kind].get(source)
        if explicit is not None:
            return explicit
        return snake_case(source) if self.raw.snake_case else source

    def identifier(self, what: str, name: str) -> str:
        problem = _identifier_problem(name)
        if problem is not None:
            self.problem(f"{what}: {problem}")
        return name

    # -- types --------------------------------------------------------------------------------------------------

    def types(self) -> list[TypeDef]:
        out = []
        seen: set[tuple[tuple[str, ...], str]] = set()
        for raw_scope, name, ref in self.raw.types:
            canonical = pascal_case(name) if self.raw.snake_case else name
            scope = tuple(pascal_case(s) for s in raw_scope) if self.raw.snake_case else raw_scope
            if not 0 <= ref < len(self.typespace):
                self.problem(f"type `{name}` refers to type &{ref}, which the typespace does not have")
                continue
            if (scope, canonical) in seen:
                self.problem(f"two types are named `{'::'.join((*scope, canonical))}`")
            seen.add((scope, canonical))
            out.append(TypeDef(canonical, ref, scope))
        return out

    # -- tables -------------------------------------------------------------------------------------------------

    def table(self, raw: _RawTable, types: list[TypeDef]) -> TableDef | None:
        where = f"table `{raw.source_name}`"
        if not 0 <= raw.product_type_ref < len(self.typespace) or not isinstance(
            self.typespace[raw.product_type_ref], ProductType
        ):
            self.problem(
                f"{where}: its row type &{raw.product_type_ref} is not a product type of the typespace"
            )
            return None
        row = self.typespace[raw.product_type_ref]
        assert isinstance(row, ProductType)
        name = self.identifier(where, self.canonical("Table", raw.source_name))
        if not raw.system and name.startswith("st_"):
            self.problem(f"{where}: table names starting with `st_` are reserved for system tables")
        if raw.system:
            self.problem(f"{where}: a module cannot declare a system table")
        self.claim(raw.source_name)
        if name != raw.source_name:
            self.claim(name)
        columns = self.columns(where, row, raw)
        if columns is None:
            return None
        column_names = [c.name for c in columns]
        indexes = [self.index(where, name, column_names, columns, index) for index in raw.indexes]
        constraints = [self.constraint(where, name, column_names, c) for c in raw.constraints]
        sequences = [self.sequence(where, name, column_names, columns, s) for s in raw.sequences]
        if any(x is None for x in (*indexes, *constraints, *sequences)):
            return None
        unique_sets = {frozenset(c.columns) for c in constraints if c is not None}
        for constraint in constraints:
            assert constraint is not None
            if not any(
                frozenset(i.columns) == frozenset(constraint.columns) for i in indexes if i is not None
            ):
                self.problem(f"{where}: unique constraint `{constraint.name}` has no index on its columns")
        final_indexes = tuple(
            IndexDef(i.name, i.accessor_name, i.algorithm, i.columns, frozenset(i.columns) in unique_sets)
            for i in indexes
            if i is not None
        )
        primary_key = self.primary_key(where, raw.primary_key, len(columns), unique_sets)
        type_name = next((t.name for t in types if t.ref == raw.product_type_ref and not t.scope), name)
        return TableDef(
            name=name,
            type_name=type_name,
            product_type_ref=raw.product_type_ref,
            columns=tuple(columns),
            indexes=final_indexes,
            constraints=tuple(c for c in constraints if c is not None),
            sequences=tuple(s for s in sequences if s is not None),
            primary_key=primary_key,
            public=raw.public,
            schedule=None,
            row_class=_row_class(type_name),
            is_event=raw.is_event,
            column_to_canonical=(None,) * len(columns),
            column_from_canonical=(None,) * len(columns),
            location=f"RawModuleDef V{self.raw.version}",
        )

    def columns(self, where: str, row: ProductType, raw: _RawTable) -> list[ColumnDef] | None:
        columns = []
        for pos, element in enumerate(row.elements):
            if element.name is None:
                self.problem(f"{where}: column {pos} has no name")
                return None
            try:
                inline = self.typespace.inline(element.type)
            except RecursiveTypeError as exc:
                self.problem(f"{where}: column `{element.name}`: {exc}")
                return None
            columns.append(ColumnDef(pos, self.identifier(where, element.name), inline, element.type))
        for col_id, value in raw.defaults:
            if not 0 <= col_id < len(columns):
                self.problem(f"{where}: a default value for column {col_id}, which the table does not have")
                continue
            column = columns[col_id]
            try:
                default = codec(column.type).decode(value)
            except DecodeError as exc:
                self.problem(f"{where}: the default value of column `{column.name}` does not decode: {exc}")
                continue
            columns[col_id] = ColumnDef(column.pos, column.name, column.type, column.raw_type, default)
        return columns

    def _col_ids(self, where: str, what: str, cols: tuple[int, ...], count: int) -> bool:
        bad = [c for c in cols if not 0 <= c < count]
        if bad or not cols:
            self.problem(f"{where}: {what} names column(s) {list(cols)}, the table has {count}")
            return False
        return True

    def index(
        self, where: str, table: str, names: list[str], columns: list[ColumnDef], raw: _RawIndex
    ) -> IndexDef | None:
        generated = f"{table}_{'_'.join(names[c] if 0 <= c < len(names) else f'col_{c}' for c in raw.columns)}_idx_{raw.algorithm}"
        if self.raw.version == 10:
            if raw.source_name is None:
                self.problem(f"{where}: an index has no source name (RawModuleDef V10 requires one)")
                return None
            self.claim(raw.source_name)
            explicit = self.raw.explicit["Index"].get(raw.source_name)
            name = explicit if explicit is not None else generated
            if name != raw.source_name:
                self.claim(name)
            accessor = raw.accessor_name or raw.source_name
        else:
            name = raw.source_name or generated
            self.claim(name)
            accessor = raw.accessor_name or name
        if not self._col_ids(where, f"index `{name}`", raw.columns, len(columns)):
            return None
        if raw.algorithm == "direct":
            ty = columns[raw.columns[0]].type
            simple_enum = isinstance(ty, SumType) and ty.is_simple_enum()
            if not simple_enum and not (isinstance(ty, PrimitiveType) and ty.kind in _DIRECT_KINDS):
                self.problem(f"{where}: direct index `{name}` needs a u8/u16/u32/u64 or simple-enum column")
                return None
        return IndexDef(name, accessor, raw.algorithm, raw.columns)

    def constraint(
        self, where: str, table: str, names: list[str], raw: tuple[str | None, tuple[int, ...]]
    ) -> ConstraintDef | None:
        source, cols = raw
        generated = f"{table}_{'_'.join(names[c] if 0 <= c < len(names) else f'col_{c}' for c in cols)}_key"
        name = generated if self.raw.version == 10 or source is None else source
        if not self._col_ids(where, f"unique constraint `{name}`", cols, len(names)):
            return None
        self.claim(name)
        return ConstraintDef(name, tuple(sorted(set(cols))))

    def sequence(
        self, where: str, table: str, names: list[str], columns: list[ColumnDef], raw: _RawSequence
    ) -> SequenceDef | None:
        if not 0 <= raw.column < len(columns):
            self.problem(f"{where}: a sequence on column {raw.column}, which the table does not have")
            return None
        name = raw.name or f"{table}_{names[raw.column]}_seq"
        ty = columns[raw.column].type
        if not (isinstance(ty, PrimitiveType) and ty.kind in _INTEGER_KINDS):
            self.problem(
                f"{where}: sequence `{name}` is on column `{names[raw.column]}`, which is not an integer"
            )
            return None
        bounds = [raw.min_value, raw.start, raw.max_value]
        present = [b for b in bounds if b is not None]
        if present != sorted(present) or (
            raw.min_value is not None and raw.max_value is not None and raw.min_value > raw.max_value
        ):
            self.problem(
                f"{where}: sequence `{name}` has min {raw.min_value}, start {raw.start}, max {raw.max_value}"
            )
            return None
        self.claim(name)
        return SequenceDef(name, raw.column, raw.start, raw.min_value, raw.max_value, raw.increment)

    def primary_key(self, where: str, pk: list[int], count: int, unique: set[frozenset[int]]) -> int | None:
        if not pk:
            return None
        if len(pk) > 1:
            self.problem(f"{where}: a primary key of several columns {pk} (one column at most)")
            return None
        column = pk[0]
        if not 0 <= column < count:
            self.problem(f"{where}: primary key column {column} does not exist")
            return None
        if frozenset((column,)) not in unique:
            self.problem(f"{where}: primary key column {column} has no unique constraint")
            return None
        return column

    # -- reducers, lifecycles, schedules ----------------------------------------------------------------------------

    def reducers(self) -> dict[str, ReducerDef]:
        out: dict[str, ReducerDef] = {}
        for raw in self.raw.reducers:
            where = f"reducer `{raw.source_name}`"
            name = self.identifier(where, self.canonical("Function", raw.source_name))
            if name in out:
                self.problem(f"two reducers are named `{name}`")
            params = self._convert(raw.params) if self.raw.snake_case else raw.params
            assert isinstance(params, ProductType)
            for pos, element in enumerate(params.elements):
                if element.name is None:
                    self.problem(f"{where}: parameter {pos} has no name")
            if raw.returns is not None:
                ok, err = raw.returns
                if ok != ProductType(()) or err != STRING:
                    self.problem(
                        f"{where}: a reducer returns Result<(), String>, this one declares {ok!r} / {err!r}"
                    )
            out[name] = ReducerDef(
                name, params, None, _not_bound, location=f"RawModuleDef V{self.raw.version}"
            )
        return out

    def lifecycles(self, reducers: dict[str, ReducerDef]) -> None:
        taken: dict[str, str] = {}
        for lifecycle, function in self.raw.lifecycles:
            name = self.canonical("Function", function) if self.raw.version == 10 else function
            reducer = reducers.get(name)
            if reducer is None:
                self.problem(f"the {lifecycle} lifecycle names `{function}`, which is not a reducer")
                continue
            if lifecycle in taken:
                self.problem(f"two {lifecycle} reducers: `{taken[lifecycle]}` and `{name}`")
                continue
            taken[lifecycle] = name
            reducer.lifecycle = lifecycle

    def schedules(
        self, tables: dict[str, TableDef], by_source: dict[str, str], reducers: dict[str, ReducerDef]
    ) -> set[str]:
        scheduled: set[str] = set()
        for raw in self.raw.schedules:
            table_name = by_source.get(raw.table, raw.table)
            table = tables.get(table_name)
            where = f"the schedule of table `{raw.table}`"
            if table is None:
                self.problem(f"{where}: no such table")
                continue
            function = self.canonical("Function", raw.function) if self.raw.version == 10 else raw.function
            reducer = reducers.get(function)
            if reducer is None:
                self.problem(f"{where}: `{raw.function}` is not a reducer")
                continue
            if [e.type for e in reducer.params.elements] != [RefType(table.product_type_ref)]:
                self.problem(f"{where}: reducer `{function}` must take exactly one argument, the table's row")
                continue
            if (
                not 0 <= raw.at_column < len(table.columns)
                or table.columns[raw.at_column].type != SCHEDULE_AT
            ):
                self.problem(f"{where}: column {raw.at_column} is not a ScheduleAt column")
                continue
            pk = table.primary_key
            if pk is None or table.columns[pk].type != U64:
                self.problem(f"{where}: a scheduled table needs a u64 primary key (its scheduled id)")
                continue
            name = f"{table.name}_sched" if self.raw.version == 10 or raw.name is None else raw.name
            self.claim(name)
            table.schedule = ScheduleDef(name, function, raw.at_column, pk)
            scheduled.add(function)
        return scheduled

    def row_level_security(self, tables: dict[str, TableDef]) -> list[RowLevelSecurityDef]:
        rules = []
        for sql in self.raw.row_level_security:
            try:
                table = rls_table(sql)
            except RlsSyntaxError as exc:
                self.problem(f"row-level security rule: {exc}")
                continue
            if table not in tables:
                self.problem(f"row-level security rule {sql!r}: no table `{table}`")
                continue
            rules.append(RowLevelSecurityDef(sql, table))
        return rules

    def procedures(self, reducers: dict[str, ReducerDef]) -> dict[str, ProcedureDef]:
        out: dict[str, ProcedureDef] = {}
        for raw in self.raw.procedures:
            where = f"procedure `{raw.source_name}`"
            name = self.identifier(where, self.canonical("Function", raw.source_name))
            if name in out or name in reducers:
                self.problem(f"{where}: the name `{name}` is taken by another reducer or procedure")
            if raw.private:
                self.problem(
                    f"{where} is private (FunctionVisibility::Private), which this server does not enforce"
                )
            params = self._convert(raw.params) if self.raw.snake_case else raw.params
            assert isinstance(params, ProductType)
            if any(element.name is None for element in params.elements):
                self.problem(f"{where}: every parameter needs a name")
            out[name] = ProcedureDef(
                name,
                params,
                raw.return_type,
                _not_bound,
                arg_from_canonical=(None,) * len(params.elements),
                arg_to_canonical=(None,) * len(params.elements),
                location=f"RawModuleDef V{self.raw.version}",
            )
        return out

    def views(self, tables: dict[str, TableDef], functions: set[str]) -> dict[str, ViewDef]:
        out: dict[str, ViewDef] = {}
        for raw in self.raw.views:
            where = f"view `{raw.source_name}`"
            name = self.identifier(where, self.canonical("Function", raw.source_name))
            if name in out or name in functions or name in tables:
                self.problem(f"{where}: the name `{name}` is taken by another view, function or table")
            if raw.params.elements:
                self.problem(f"{where}: views with parameters are not served")
                continue
            shape, ref = _view_shape(raw.return_type)
            row = self.typespace[ref] if ref is not None and 0 <= ref < len(self.typespace) else None
            if shape is None or not isinstance(row, ProductType) or not row.elements:
                self.problem(
                    f"{where}: a view returns an array or an option of a product type from the typespace"
                )
                continue
            assert ref is not None
            try:
                row_type = self.typespace.inline(row)
            except RecursiveTypeError as exc:
                self.problem(f"{where}: its row type: {exc}")
                continue
            assert isinstance(row_type, ProductType)
            primary_key = self.view_primary_key(where, raw.source_name, self.raw.typespace[ref])
            out[name] = ViewDef(
                name=name,
                index=len(out),
                func=_not_bound,
                public=raw.public,
                anonymous=raw.anonymous,
                shape=shape,
                row_ref=ref,
                row_type=row_type,
                row_class=_row_class(name),
                row_to_canonical=tuple,
                location=f"RawModuleDef V{self.raw.version}",
                call_id=raw.index,
                primary_key=primary_key,
            )
        known = {raw.source_name for raw in self.raw.views}
        for view, _ in self.raw.view_primary_keys:
            if view not in known:
                self.problem(f"a view primary key names view `{view}`, which the module does not have")
        return out

    def view_primary_key(self, where: str, source_name: str, source_row: AlgebraicType) -> int | None:
        """The column position of the view's primary key (V10's ViewPrimaryKeys section), as upstream validates
        it: one declaration per view, of one column of its rows, named as the module's source names it."""
        declared = [columns for view, columns in self.raw.view_primary_keys if view == source_name]
        if not declared:
            return None
        if len(declared) > 1:
            self.problem(f"{where}: its primary key is declared {len(declared)} times")
            return None
        if len(declared[0]) != 1:
            self.problem(f"{where}: a view's primary key is one column, got {declared[0]}")
            return None
        assert isinstance(source_row, ProductType)  # as the converted row type it was checked against
        try:
            return primary_key_position(source_row, declared[0][0])
        except ValueError as exc:
            self.problem(f"{where}: {exc}")
            return None

    def module_def(self) -> ModuleDef:
        types = self.types()
        tables: dict[str, TableDef] = {}
        by_source: dict[str, str] = {}
        for raw in self.raw.tables:
            table = self.table(raw, types)
            if table is None:
                continue
            if table.name in tables:
                self.problem(f"two tables are named `{table.name}`")
            tables[table.name] = table
            by_source[raw.source_name] = table.name
        reducers = self.reducers()
        self.lifecycles(reducers)
        scheduled = self.schedules(tables, by_source, reducers)
        for raw_reducer in self.raw.reducers:
            name = self.canonical("Function", raw_reducer.source_name)
            reducer = reducers.get(name)
            if (
                raw_reducer.private
                and reducer is not None
                and reducer.lifecycle is None
                and name not in scheduled
            ):
                self.problem(
                    f"reducer `{raw_reducer.source_name}` is private (FunctionVisibility::Private), which this "
                    "server does not enforce for clients: not served"
                )
        procedures = self.procedures(reducers)
        views = self.views(tables, set(reducers) | set(procedures))
        rls = self.row_level_security(tables)
        for what in self.raw.unserved:
            self.problem(f"the module uses {what}")
        if self.problems:
            first = self.problems[0]
            more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
            raise ModuleError(f"the module cannot be served: {first}{more}", list(self.problems))
        index_aliases = {
            raw_index.source_name: index.name
            for raw_table in self.raw.tables
            for raw_index, index in zip(
                raw_table.indexes, tables[by_source[raw_table.source_name]].indexes, strict=True
            )
            if raw_index.source_name is not None and raw_index.source_name != index.name
        }
        return ModuleDef(
            typespace=self.typespace,
            types=types,
            tables=tables,
            reducers=reducers,
            row_level_security=rls,
            views=views,
            procedures=procedures,
            table_aliases={source: name for source, name in by_source.items() if source != name},
            index_aliases=index_aliases,
        )


def _view_shape(return_type: AlgebraicType) -> tuple[str | None, int | None]:
    """(LIST or OPTIONAL, the row type's ref) of a view's return type: ``Array(Ref)`` or ``Option(Ref)``."""
    if isinstance(return_type, ArrayType) and isinstance(return_type.elem, RefType):
        return LIST, return_type.elem.index
    if (
        isinstance(return_type, SumType)
        and [v.name for v in return_type.variants] == ["some", "none"]
        and isinstance(return_type.variants[0].type, RefType)
    ):
        return OPTIONAL, return_type.variants[0].type.index
    return None, None


def decode_module_def(data: bytes) -> ModuleDef:
    """Decode and validate a BSATN ``RawModuleDef`` (V9 or V10) into a ``ModuleDef`` whose reducers are not yet
    bound (``ReducerDef.func``); ``ModuleError`` lists every problem, including what cannot be served."""
    return _Validator(decode_raw_module_def(data)).module_def()
