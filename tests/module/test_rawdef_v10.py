"""RawModuleDef V10 as the server serves it (``/schema?version=10``, what upstream's ``describe --json`` prints):
upstream's layout (crates/schema/src/def.rs, ``impl From<ModuleDef> for RawModuleDefV10``), checked by decoding
it back with the decoder SpacetimeDB's own modules go through."""

from __future__ import annotations

from typing import Any

from spacetimedb.module import ModuleDef
from spacetimedb.module.rawdef_decode import decode_module_def
from spacetimedb.module.rawdef_v10 import raw_module_def_v10_bsatn, raw_v10_json

from .helpers import load_source
from .test_rawdef_decode import fruit_module

SOURCE = """
class Color(enum.Enum):
    RED = 0
    BLUE = 1

@table(accessor="players", name="player", public=True)
class Player:
    id: Annotated[u64, PrimaryKey, AutoInc]
    name: Annotated[str, Unique]
    color: Color = Color.BLUE

@table(scheduled="tick", scheduled_at="fire_at")
class Timer:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    fire_at: ScheduleAt

@table(public=True, event=True)
class Ping:
    text: str

client_visibility_filter("SELECT * FROM player WHERE name = 'x'")

@reducer(lifecycle="client_connected")
def hello(ctx: ReducerContext) -> None: ...

@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None: ...

@reducer
def tick(ctx: ReducerContext, timer: Timer) -> None: ...

@reducer
def paint(ctx: ReducerContext, color: Color, label: str) -> None: ...

@procedure
def double(ctx: ProcedureContext, value: u32) -> u64:
    return value * 2

@view(public=True)
def me(ctx: ViewContext) -> Optional[Player]:
    return None

@anonymous_view(primary_key="id")
def everyone(ctx: AnonymousViewContext) -> list[Player]:
    return []
"""
# the decoder refuses a foreign module's HTTP handlers (not served yet), so the round trip goes without them
HANDLERS = """
from spacetimedb.http import HandlerContext, Request, Response, Router, handler, router

@handler
def hello(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"hi")

@router
def routes() -> Router:
    return Router().get("/hello", hello).any("/echo", hello)
"""


def module(source: str = SOURCE + HANDLERS) -> ModuleDef:
    return load_source(source).module_def


def sections(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in raw["sections"]:
        ((name, payload),) = section.items()
        out[name] = payload
    return out


def test_sections_come_in_upstreams_order_with_explicit_names_last() -> None:
    raw = raw_v10_json(module())
    assert [next(iter(s)) for s in raw["sections"]] == [
        "Typespace",
        "Types",
        "Tables",
        "Reducers",
        "Procedures",
        "HttpHandlers",
        "HttpRoutes",
        "Views",
        "ViewPrimaryKeys",
        "Schedules",
        "LifeCycleReducers",
        "RowLevelSecurity",
        "CaseConversionPolicy",
        "ExplicitNames",
    ]
    empty = load_source("@reducer\ndef noop(ctx: ReducerContext) -> None: ...\n").module_def
    assert [next(iter(s)) for s in raw_v10_json(empty)["sections"]] == [
        "Typespace",
        "Reducers",
        "CaseConversionPolicy",
        "ExplicitNames",
    ]


def test_tables_schedules_defaults_and_names_as_upstream_lays_them_out() -> None:
    parts = sections(raw_v10_json(module()))
    tables = {t["source_name"]: t for t in parts["Tables"]}
    assert sorted(tables) == ["ping", "players", "timer"]  # under the accessor
    player = tables["players"]
    assert player["default_values"] == [{"col_id": 2, "value": "01"}]  # Color.BLUE, as BSATN hex
    assert player["constraints"][0]["source_name"] == {"some": "player_id_key"}
    assert player["sequences"][0]["source_name"] == {"some": "player_id_seq"}
    assert "schedule" not in tables["timer"]
    assert tables["ping"]["is_event"] is True and tables["players"]["is_event"] is False
    assert parts["Schedules"] == [
        {
            "source_name": {"some": "timer_sched"},
            "table_name": "timer",
            "schedule_at_col": 1,
            "function_name": "tick",
        }
    ]
    entries = parts["ExplicitNames"]["entries"]
    assert {"Table": {"source_name": "players", "canonical_name": "player"}} in entries
    assert {"Function": {"source_name": "double", "canonical_name": "double"}} in entries
    assert {"Function": {"source_name": "everyone", "canonical_name": "everyone"}} in entries
    assert parts["RowLevelSecurity"] == [{"sql": "SELECT * FROM player WHERE name = 'x'"}]


def test_reducers_lifecycles_procedures_and_views() -> None:
    parts = sections(raw_v10_json(module()))
    reducers = {r["source_name"]: r for r in parts["Reducers"]}
    assert list(reducers) == ["hello", "init", "tick", "paint"]  # declaration order
    assert reducers["init"]["visibility"] == {"Private": []}  # lifecycle reducers cannot be called
    assert reducers["paint"]["visibility"] == {"ClientCallable": []}
    assert reducers["paint"]["ok_return_type"] == {"Product": {"elements": []}}
    assert reducers["paint"]["err_return_type"] == {"String": []}
    # upstream's Lifecycle order, not declaration order
    assert parts["LifeCycleReducers"] == [
        {"lifecycle_spec": {"Init": []}, "function_name": "init"},
        {"lifecycle_spec": {"OnConnect": []}, "function_name": "hello"},
    ]
    (double,) = parts["Procedures"]
    assert double["source_name"] == "double" and double["return_type"] == {"U64": []}
    assert double["visibility"] == {"ClientCallable": []}
    views = {v["source_name"]: v for v in parts["Views"]}
    assert (views["me"]["is_public"], views["me"]["is_anonymous"]) == (True, False)
    assert (views["everyone"]["is_public"], views["everyone"]["is_anonymous"]) == (False, True)
    assert views["everyone"]["params"] == {"elements": []}
    assert parts["ViewPrimaryKeys"] == [{"view_source_name": "everyone", "columns": ["id"]}]
    assert parts["HttpHandlers"] == [{"source_name": "hello"}]
    assert parts["HttpRoutes"] == [
        {"handler_function": "hello", "method": {"Method": {"Get": []}}, "path": "/hello"},
        {"handler_function": "hello", "method": {"Any": []}, "path": "/echo"},
    ]


def test_decoding_the_encoding_gives_the_same_module() -> None:
    """A round trip through the decoder SpacetimeDB's modules go through: every name, type, key, index,
    constraint, sequence, schedule, default, lifecycle, procedure, view and rule survives."""
    original = module(SOURCE)
    decoded = decode_module_def(raw_module_def_v10_bsatn(original))
    assert sorted(decoded.tables) == sorted(original.tables)
    for name, table in original.tables.items():
        other = decoded.tables[name]
        # the decoder keeps a foreign module's own table names as aliases of the canonical ones
        assert decoded.table_aliases.get(table.accessor_name, name) == name
        assert [(c.name, c.type, c.default if c.has_default else None) for c in other.columns] == [
            (c.name, c.type, c.default if c.has_default else None) for c in table.columns
        ]
        assert other.primary_key == table.primary_key and other.public == table.public
        assert other.is_event == table.is_event
        assert {(i.name, i.algorithm, i.columns) for i in other.indexes} == {
            (i.name, i.algorithm, i.columns) for i in table.indexes
        }
        assert {(c.name, c.columns) for c in other.constraints} == {
            (c.name, c.columns) for c in table.constraints
        }
        assert {(s.name, s.column, s.increment) for s in other.sequences} == {
            (s.name, s.column, s.increment) for s in table.sequences
        }
        schedule = table.schedule
        assert (other.schedule is None) == (schedule is None)
        if schedule is not None and other.schedule is not None:
            assert (other.schedule.name, other.schedule.reducer_name, other.schedule.at_column) == (
                schedule.name,
                schedule.reducer_name,
                schedule.at_column,
            )
    assert [(r.name, r.lifecycle, r.params) for r in decoded.reducers.values()] == [
        (r.name, r.lifecycle, r.params) for r in original.reducers.values()
    ]
    assert [(p.name, p.params, p.return_type) for p in decoded.procedures.values()] == [
        (p.name, p.params, p.return_type) for p in original.procedures.values()
    ]
    assert [
        (v.name, v.public, v.anonymous, v.shape, v.row_ref, v.primary_key) for v in decoded.views.values()
    ] == [(v.name, v.public, v.anonymous, v.shape, v.row_ref, v.primary_key) for v in original.views.values()]
    assert [r.sql for r in decoded.row_level_security] == [r.sql for r in original.row_level_security]
    assert sorted((t.name, t.ref) for t in decoded.types) == sorted((t.name, t.ref) for t in original.types)
    assert decoded.typespace.types == original.typespace.types


def test_a_foreign_modules_tables_keep_their_own_names_as_source_names() -> None:
    """Upstream lists a table under the name its module declared (``FruitBasket``) and maps it to the
    canonical one (``fruit_basket``) in ExplicitNames; decoding that again gives the same tables."""
    decoded = decode_module_def(fruit_module())
    parts = sections(raw_v10_json(decoded))
    assert sorted(t["source_name"] for t in parts["Tables"]) == ["FruitBasket", "deliveryRecord"]
    tables = [e["Table"] for e in parts["ExplicitNames"]["entries"] if "Table" in e]
    assert {(t["source_name"], t["canonical_name"]) for t in tables} == {
        ("FruitBasket", "fruit_basket"),
        ("deliveryRecord", "delivery_record"),
    }
    again = decode_module_def(raw_module_def_v10_bsatn(decoded))
    assert sorted(again.tables) == sorted(decoded.tables) == ["delivery_record", "fruit_basket"]
    assert {n: t.row_type for n, t in again.tables.items()} == {
        n: t.row_type for n, t in decoded.tables.items()
    }
