"""RawModuleDef V10: a validated ``ModuleDef`` as SpacetimeDB serves it at ``/schema?version=10``.

The layout is the one ``rawdef_decode`` reads (``RAW_MODULE_DEF_V10``: a list of sections), filled in as upstream
converts its validated definition back (``impl From<ModuleDef> for RawModuleDefV10`` in
``crates/schema/src/def.rs``), so that ``spacetime describe --json`` prints what SpacetimeDB's CLI prints:

- sections in upstream's order, each only when it has something (``Typespace``, ``CaseConversionPolicy`` and
  ``ExplicitNames`` always): Typespace, Types, Tables, Reducers, Procedures, HttpHandlers, HttpRoutes, Views,
  ViewPrimaryKeys, Schedules, LifeCycleReducers, RowLevelSecurity, CaseConversionPolicy, ExplicitNames. Upstream emits no
  ``CaseConversionPolicy`` (its names are already in the cases the default policy produces, so converting them
  again changes nothing); ours says ``None``, because a Python module's names (``Color.RED``, a ``camelCase``
  column) are canonical as written and the default policy would rename them.
- tables, reducers, procedures and views are listed under their accessor (source) name; ``ExplicitNames`` maps
  every table's and every function's accessor to its canonical name (upstream emits an entry for each, even
  when both are the same);
- a table's schedule moves to the ``Schedules`` section, its column defaults into its own ``default_values``
  (BSATN of the value), and it says whether it is an event table;
- a reducer's ``ok_return_type`` is the unit product and its ``err_return_type`` a string (upstream's defaults).

Visibility follows this server rather than upstream where they differ: lifecycle reducers are ``Private`` (they
cannot be called), every other reducer and procedure ``ClientCallable``, scheduled ones included (upstream makes
those ``Private``; here clients may still call them). Tables, indexes, constraints, sequences, types and
row-level security rules are sorted by name, as in V9; reducers, procedures and views keep declaration order.
"""

from __future__ import annotations

from typing import Any

from spacetimedb.sats import STRING, ProductType, SumValue, codec, encode
from spacetimedb.sats.json import to_json
from spacetimedb.sats.meta import type_to_value

from .handlers import HttpRouteDef
from .moduledef import LIFECYCLE_CONNECTED, LIFECYCLE_DISCONNECTED, LIFECYCLE_INIT, ModuleDef, TableDef
from .rawdef import (
    LIFECYCLE_TAGS,
    NO_PARAMS,
    USER_TABLE,
    constraint_values,
    index_values,
    product_value,
    sequence_values,
    table_access_value,
)
from .rawdef_decode import HTTP_METHOD, RAW_MODULE_DEF_V10, RAW_V10_TYPESPACE, SECTION_NAMES, TAG_V10
from .views import ViewDef

PRIVATE, CLIENT_CALLABLE = SumValue(0, ()), SumValue(1, ())
EXPLICIT_TABLE, EXPLICIT_FUNCTION = 0, 1
NO_CASE_CONVERSION = SumValue(0, ())  # CaseConversionPolicy::None
UNIT_RETURN = type_to_value(ProductType(()))
STRING_ERROR = type_to_value(STRING)


def _section(name: str, payload: Any) -> SumValue:
    return SumValue(SECTION_NAMES.index(name), payload)


def table_value_v10(table: TableDef, source_name: str) -> tuple[Any, ...]:
    """``table`` as a value of ``RawTableDefV10``, listed under ``source_name``."""
    defaults = [
        (column.pos, encode(column.type, column.default)) for column in table.columns if column.has_default
    ]
    return (
        source_name,
        table.product_type_ref,
        [] if table.primary_key is None else [table.primary_key],
        index_values(table),
        constraint_values(table),
        sequence_values(table),
        USER_TABLE,
        table_access_value(table),
        defaults,
        table.is_event,
    )


def _view_value(view: ViewDef) -> tuple[Any, ...]:
    # a foreign program's own number for the view, which upstream's `index` is; a Python view's position
    index = view.call_id if view.call_id >= 0 else view.index
    return (view.name, index, view.public, view.anonymous, NO_PARAMS, type_to_value(view.return_type))


def _route_value(route: HttpRouteDef) -> tuple[str, SumValue, str]:
    """A route as ``RawHttpRouteDefV10``: ``Any``, or ``Method`` with upstream's variant of the method (GET is
    ``Get``)."""
    if route.method is None:
        method = SumValue(0, ())
    else:
        names = [variant.name for variant in HTTP_METHOD.variants]
        spelled = route.method.capitalize()
        inner = (
            SumValue(names.index(spelled), ())
            if spelled in names
            else SumValue(names.index("Extension"), route.method)
        )
        method = SumValue(1, inner)
    return (route.handler, method, route.path)


def _view_primary_keys(module: ModuleDef) -> list[tuple[str, list[str]]]:
    """``RawViewPrimaryKeyDefV10`` of each view with a primary key: the view and the key column's name."""
    return [
        (view.name, [view.primary_key_name])
        for view in module.views.values()
        if view.primary_key_name is not None
    ]


def _reducers(module: ModuleDef) -> list[tuple[Any, ...]]:
    return [
        (
            r.name,
            product_value(r.params),
            PRIVATE if r.lifecycle is not None else CLIENT_CALLABLE,
            UNIT_RETURN,
            STRING_ERROR,
        )
        for r in module.reducers.values()
    ]


def _procedures(module: ModuleDef) -> list[tuple[Any, ...]]:
    return [
        (p.name, product_value(p.params), type_to_value(p.return_type), CLIENT_CALLABLE)
        for p in module.procedures.values()
    ]


def _table_source_names(module: ModuleDef) -> dict[str, str]:
    """Canonical table name -> the module's own name for it: a Python table's accessor, or the name a foreign
    (WASM, JS) module declared before V10's case conversion made it canonical."""
    names = {name: table.accessor_name for name, table in module.tables.items()}
    for source, canonical in module.table_aliases.items():
        if canonical in names and names[canonical] == canonical:
            names[canonical] = source
    return names


def _explicit_names(
    module: ModuleDef, tables: list[TableDef], sources: dict[str, str]
) -> tuple[list[SumValue]]:
    entries = [SumValue(EXPLICIT_TABLE, (sources[t.name], t.name)) for t in tables]
    functions = [*module.reducers, *module.procedures, *module.views]
    entries += [SumValue(EXPLICIT_FUNCTION, (name, name)) for name in functions]
    return (entries,)


def raw_module_def_v10(module: ModuleDef) -> tuple[list[SumValue]]:
    """``module`` as a value of ``RAW_MODULE_DEF_V10`` (in ``RAW_V10_TYPESPACE``)."""
    tables = [module.tables[name] for name in sorted(module.tables)]
    sources = _table_source_names(module)
    candidates: list[tuple[str, Any]] = [
        ("Types", [((list(t.scope), t.name), t.ref, False) for t in sorted(module.types, key=_type_key)]),
        ("Tables", [table_value_v10(t, sources[t.name]) for t in tables]),
        ("Reducers", _reducers(module)),
        ("Procedures", _procedures(module)),
        ("HttpHandlers", [(name,) for name in module.http_handlers]),
        ("HttpRoutes", [_route_value(route) for route in module.http_routes]),
        ("Views", [_view_value(v) for v in module.views.values()]),
        ("ViewPrimaryKeys", _view_primary_keys(module)),
        ("Schedules", _schedules(tables)),
        ("LifeCycleReducers", _lifecycles(module)),
        (
            "RowLevelSecurity",
            [(rule.sql,) for rule in sorted(module.row_level_security, key=lambda r: r.sql)],
        ),
    ]
    sections = [_section("Typespace", ([type_to_value(ty) for ty in module.typespace.types],))]
    sections += [_section(name, payload) for name, payload in candidates if payload]
    # Our names are canonical as the module wrote them: a reader that validates the definition again (as
    # SpacetimeDB's CLI does for `describe table`) must not convert their case.
    sections.append(_section("CaseConversionPolicy", NO_CASE_CONVERSION))
    sections.append(_section("ExplicitNames", _explicit_names(module, tables, sources)))
    return (sections,)


def _type_key(t: Any) -> tuple[list[str], str]:
    return list(t.scope), t.name


def _schedules(tables: list[TableDef]) -> list[tuple[Any, ...]]:
    return [
        (t.schedule.name, t.name, t.schedule.at_column, t.schedule.reducer_name)
        for t in tables
        if t.schedule is not None
    ]


def _lifecycles(module: ModuleDef) -> list[tuple[SumValue, str]]:
    """Upstream lists them in the order of its ``Lifecycle`` enum: init, connected, disconnected."""
    found = []
    for lifecycle in (LIFECYCLE_INIT, LIFECYCLE_CONNECTED, LIFECYCLE_DISCONNECTED):
        reducer = module.lifecycle_reducer(lifecycle)
        if reducer is not None:
            found.append((SumValue(LIFECYCLE_TAGS[lifecycle], ()), reducer.name))
    return found


def raw_v10_json(module: ModuleDef) -> Any:
    """The SATS-JSON that ``GET /v1/database/:name/schema?version=10`` serves."""
    return to_json(RAW_MODULE_DEF_V10, raw_module_def_v10(module), RAW_V10_TYPESPACE)


def raw_module_def_v10_bsatn(module: ModuleDef) -> bytes:
    """BSATN of ``RawModuleDef::V10``: the enum tag, then the sections (what a module built by SpacetimeDB's
    toolchains describes itself with)."""
    return bytes([TAG_V10]) + codec(RAW_MODULE_DEF_V10, RAW_V10_TYPESPACE).encode(raw_module_def_v10(module))
