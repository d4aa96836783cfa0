"""RawModuleDef v9: the module schema as SpacetimeDB serves it (``GET /v1/database/:name/schema?version=9``).

``RAW_MODULE_DEF_V9`` is its SATS type (resolved in ``RAW_TYPESPACE``, whose first three entries are the
meta-types ``AlgebraicType``, ``SumType``, ``ProductType``), so the same value encodes to BSATN and SATS-JSON.
Field order is BSATN order (``crates/lib/src/db/raw_def/v9.rs``).

What the server serves is the *validated* definition converted back: generated names are filled in (index
``{table}_{cols}_idx_{algorithm}``, constraint ``{table}_{cols}_key``, sequence ``{table}_{col}_seq``, schedule
``{table}_sched``), and tables, indexes, constraints, sequences, types and row-level security rules are sorted
by name; reducers keep declaration order; column defaults are ``misc_exports`` ``ColumnDefaultValue`` entries,
followed by a ``Procedure`` entry per procedure and a ``View`` entry per view (declaration order; a view's
``return_type`` is ``Array(Ref row)`` or ``Option(Ref row)``).
"""

from __future__ import annotations

from typing import Any

from spacetimedb.sats import (
    BOOL,
    BYTES,
    I128,
    STRING,
    U16,
    U32,
    ArrayType,
    ProductType,
    SumType,
    SumValue,
    Typespace,
    codec,
    encode,
    option,
)
from spacetimedb.sats.json import to_json
from spacetimedb.sats.meta import ALGEBRAIC_TYPE_REF, META_TYPESPACE, PRODUCT_TYPE_REF, type_to_value

from .moduledef import (
    LIFECYCLE_CONNECTED,
    LIFECYCLE_DISCONNECTED,
    LIFECYCLE_INIT,
    IndexDef,
    ModuleDef,
    TableDef,
)

RAW_TYPESPACE = Typespace(list(META_TYPESPACE.types))

COL_LIST = ArrayType(U16)
OPT_STRING = option(STRING)
# A Rust enum variant with exactly one field is a newtype variant: BTree([0]), not BTree({columns: [0]}).
RAW_INDEX_ALGORITHM = SumType.of(("BTree", COL_LIST), ("Hash", COL_LIST), ("Direct", U16))
RAW_INDEX_DEF = ProductType.of(
    ("name", OPT_STRING), ("accessor_name", OPT_STRING), ("algorithm", RAW_INDEX_ALGORITHM)
)
RAW_CONSTRAINT_DEF = ProductType.of(
    ("name", OPT_STRING), ("data", SumType.of(("Unique", ProductType.of(("columns", COL_LIST)))))
)
RAW_SEQUENCE_DEF = ProductType.of(
    ("name", OPT_STRING),
    ("column", U16),
    ("start", option(I128)),
    ("min_value", option(I128)),
    ("max_value", option(I128)),
    ("increment", I128),
)
RAW_SCHEDULE_DEF = ProductType.of(
    ("name", OPT_STRING), ("reducer_name", STRING), ("scheduled_at_column", U16)
)
TABLE_TYPE = SumType.of("System", "User")
TABLE_ACCESS = SumType.of("Public", "Private")
RAW_TABLE_DEF = ProductType.of(
    ("name", STRING),
    ("product_type_ref", U32),
    ("primary_key", COL_LIST),
    ("indexes", ArrayType(RAW_INDEX_DEF)),
    ("constraints", ArrayType(RAW_CONSTRAINT_DEF)),
    ("sequences", ArrayType(RAW_SEQUENCE_DEF)),
    ("schedule", option(RAW_SCHEDULE_DEF)),
    ("table_type", TABLE_TYPE),
    ("table_access", TABLE_ACCESS),
)
LIFECYCLE = SumType.of("Init", "OnConnect", "OnDisconnect")
RAW_REDUCER_DEF = ProductType.of(
    ("name", STRING), ("params", PRODUCT_TYPE_REF), ("lifecycle", option(LIFECYCLE))
)
RAW_TYPE_DEF = ProductType.of(
    ("name", ProductType.of(("scope", ArrayType(STRING)), ("name", STRING))),
    ("ty", U32),
    ("custom_ordering", BOOL),
)
RAW_MISC_EXPORT = SumType.of(
    ("ColumnDefaultValue", ProductType.of(("table", STRING), ("col_id", U16), ("value", BYTES))),
    (
        "Procedure",
        ProductType.of(("name", STRING), ("params", PRODUCT_TYPE_REF), ("return_type", ALGEBRAIC_TYPE_REF)),
    ),
    (
        "View",
        ProductType.of(
            ("name", STRING),
            ("index", U32),
            ("is_public", BOOL),
            ("is_anonymous", BOOL),
            ("params", PRODUCT_TYPE_REF),
            ("return_type", ALGEBRAIC_TYPE_REF),
        ),
    ),
)
RAW_ROW_LEVEL_SECURITY_DEF = ProductType.of(("sql", STRING))
RAW_MODULE_DEF_V9 = ProductType.of(
    ("typespace", ProductType.of(("types", ArrayType(ALGEBRAIC_TYPE_REF)))),
    ("tables", ArrayType(RAW_TABLE_DEF)),
    ("reducers", ArrayType(RAW_REDUCER_DEF)),
    ("types", ArrayType(RAW_TYPE_DEF)),
    ("misc_exports", ArrayType(RAW_MISC_EXPORT)),
    ("row_level_security", ArrayType(RAW_ROW_LEVEL_SECURITY_DEF)),
)
# Tag of V9 in the `RawModuleDef` enum (0 V8BackCompat, 1 V9, 2 V10).
RAW_MODULE_DEF_V9_TAG = 1

_ALGORITHM_TAGS = {"btree": 0, "hash": 1, "direct": 2}
LIFECYCLE_TAGS = {LIFECYCLE_INIT: 0, LIFECYCLE_CONNECTED: 1, LIFECYCLE_DISCONNECTED: 2}


def product_value(ty: ProductType) -> tuple[list[tuple[str | None, Any]]]:
    """A ProductType as a value of the meta ``ProductType`` (the payload of ``AlgebraicType::Product``)."""
    value = type_to_value(ty)
    return value.value  # type: ignore[no-any-return]  # the payload of a Product value is its element list


def index_values(table: TableDef) -> list[tuple[Any, ...]]:
    """The table's indexes as values of ``RAW_INDEX_DEF`` (the same layout in V9 and V10), sorted by name."""
    return [
        (index.name, index.accessor_name, _algorithm_value(index))
        for index in sorted(table.indexes, key=lambda i: i.name)
    ]


def _algorithm_value(index: IndexDef) -> SumValue:
    # Direct names its one column; BTree and Hash a column list
    columns: Any = index.columns[0] if index.algorithm == "direct" else list(index.columns)
    return SumValue(_ALGORITHM_TAGS[index.algorithm], columns)


def constraint_values(table: TableDef) -> list[tuple[Any, ...]]:
    """The table's unique constraints as values of ``RAW_CONSTRAINT_DEF`` (V9 and V10), sorted by name."""
    return [
        (constraint.name, SumValue(0, (list(constraint.columns),)))
        for constraint in sorted(table.constraints, key=lambda c: c.name)
    ]


def sequence_values(table: TableDef) -> list[tuple[Any, ...]]:
    """The table's sequences as values of ``RAW_SEQUENCE_DEF`` (V9 and V10), sorted by name."""
    return [
        (seq.name, seq.column, seq.start, seq.min_value, seq.max_value, seq.increment)
        for seq in sorted(table.sequences, key=lambda s: s.name)
    ]


def table_access_value(table: TableDef) -> SumValue:
    return SumValue(0 if table.public else 1, ())


USER_TABLE = SumValue(1, ())  # TableType::User


def _table_value(table: TableDef) -> tuple[Any, ...]:
    schedule = None
    if table.schedule is not None:
        schedule = (table.schedule.name, table.schedule.reducer_name, table.schedule.at_column)
    return (
        table.name,
        table.product_type_ref,
        [] if table.primary_key is None else [table.primary_key],
        index_values(table),
        constraint_values(table),
        sequence_values(table),
        schedule,
        USER_TABLE,
        table_access_value(table),
    )


def _column_defaults(module: ModuleDef) -> list[SumValue]:
    out = []
    for name in sorted(module.tables):
        table = module.tables[name]
        for column in table.columns:
            if column.has_default:
                value = encode(column.type, column.default)
                out.append(SumValue(0, (name, column.pos, value)))
    return out


NO_PARAMS = product_value(ProductType(()))


def _view_exports(module: ModuleDef) -> list[SumValue]:
    return [
        SumValue(
            2,
            (view.name, view.index, view.public, view.anonymous, NO_PARAMS, type_to_value(view.return_type)),
        )
        for view in module.views.values()
    ]


def raw_module_def_v9(module: ModuleDef) -> tuple[Any, ...]:
    """``module`` as a canonical value of ``RAW_MODULE_DEF_V9`` (in ``RAW_TYPESPACE``)."""
    typespace = ([type_to_value(ty) for ty in module.typespace.types],)
    tables = [_table_value(module.tables[name]) for name in sorted(module.tables)]
    reducers = [
        (
            reducer.name,
            product_value(reducer.params),
            None if reducer.lifecycle is None else SumValue(LIFECYCLE_TAGS[reducer.lifecycle], ()),
        )
        for reducer in module.reducers.values()
    ]
    types = [
        ((list(t.scope), t.name), t.ref, False)
        for t in sorted(module.types, key=lambda t: (list(t.scope), t.name))
    ]
    rls = [(rule.sql,) for rule in sorted(module.row_level_security, key=lambda r: r.sql)]
    return (
        typespace,
        tables,
        reducers,
        types,
        _column_defaults(module) + _procedures(module) + _view_exports(module),
        rls,
    )


def _procedures(module: ModuleDef) -> list[SumValue]:
    return [
        SumValue(1, (p.name, product_value(p.params), type_to_value(p.return_type)))
        for p in module.procedures.values()
    ]


def raw_v9_json(module: ModuleDef) -> Any:
    """The inner V9 object, as ``/schema?version=9`` serves it."""
    return to_json(RAW_MODULE_DEF_V9, raw_module_def_v9(module), RAW_TYPESPACE)


def raw_v9_bsatn(module: ModuleDef) -> bytes:
    """BSATN of the inner V9 object."""
    return codec(RAW_MODULE_DEF_V9, RAW_TYPESPACE).encode(raw_module_def_v9(module))


def raw_module_def_json(module: ModuleDef) -> Any:
    """The wrapped ``RawModuleDef`` form ``{"V9": {...}}`` (what ``spacetime generate --module-def`` reads)."""
    return {"V9": raw_v9_json(module)}


def raw_module_def_bsatn(module: ModuleDef) -> bytes:
    """BSATN of the wrapped ``RawModuleDef::V9``: the enum tag, then the V9 object."""
    return bytes([RAW_MODULE_DEF_V9_TAG]) + raw_v9_bsatn(module)
