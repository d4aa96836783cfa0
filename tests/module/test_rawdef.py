"""RawModuleDef v9: the JSON `/schema?version=9` serves, and its BSATN."""

from __future__ import annotations

import json

from spacetimedb.module import load_module, raw_module_def_bsatn, raw_module_def_json
from spacetimedb.module.rawdef import RAW_MODULE_DEF_V9, RAW_TYPESPACE
from spacetimedb.sats import codec, decode, encode
from spacetimedb.sats.json import from_json

from .helpers import QUICKSTART, load_source

# protocol-reference §11.1, verbatim
SPEC_EXAMPLE = (
    '{"typespace":{"types":[{"Product":{"elements":[{"name":{"some":"id"},"algebraic_type":{"U32":[]}},'
    '{"name":{"some":"text"},"algebraic_type":{"String":[]}}]}}]},'
    '"tables":[{"name":"t","product_type_ref":0,"primary_key":[0],"indexes":[{"name":{"some":"t_id_idx_btree"},'
    '"accessor_name":{"some":"id"},"algorithm":{"BTree":[0]}}],'
    '"constraints":[{"name":{"some":"t_id_key"},"data":{"Unique":{"columns":[0]}}}],"sequences":[],'
    '"schedule":{"none":[]},"table_type":{"User":[]},"table_access":{"Public":[]}}],'
    '"reducers":[{"name":"add","params":{"elements":[{"name":{"some":"text"},"algebraic_type":{"String":[]}}]},'
    '"lifecycle":{"none":[]}}],'
    '"types":[{"name":{"scope":[],"name":"T"},"ty":0,"custom_ordering":false}],"misc_exports":[],'
    '"row_level_security":[]}'
)

SPEC_MODULE = """
@table(public=True)
class T:
    id: Annotated[u32, PrimaryKey]
    text: str

@reducer
def add(ctx: ReducerContext, text: str) -> None:
    ctx.db.t.insert(T(id=0, text=text))
"""


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_matches_the_spec_example_byte_for_byte() -> None:
    module = load_source(SPEC_MODULE).module_def
    assert compact(module.raw_v9_json()) == SPEC_EXAMPLE
    assert compact(raw_module_def_json(module)) == '{"V9":' + SPEC_EXAMPLE + "}"


def test_bsatn_round_trips_and_agrees_with_json() -> None:
    module = load_source(SPEC_MODULE).module_def
    data = module.raw_v9_bsatn()
    value = module.to_raw_v9()
    assert codec(RAW_MODULE_DEF_V9, RAW_TYPESPACE).decode(data) == decode(
        RAW_MODULE_DEF_V9, data, RAW_TYPESPACE
    )
    assert encode(RAW_MODULE_DEF_V9, decode(RAW_MODULE_DEF_V9, data, RAW_TYPESPACE), RAW_TYPESPACE) == data
    assert from_json(RAW_MODULE_DEF_V9, json.loads(SPEC_EXAMPLE), RAW_TYPESPACE) == decode(
        RAW_MODULE_DEF_V9, data, RAW_TYPESPACE
    )
    assert encode(RAW_MODULE_DEF_V9, value, RAW_TYPESPACE) == data
    assert raw_module_def_bsatn(module) == b"\x01" + data
    # BSATN starts with the typespace: one type, a Product (tag 2) with two elements
    assert data[:9] == bytes([1, 0, 0, 0, 2, 2, 0, 0, 0])


def test_quickstart_schema() -> None:
    schema = load_module(QUICKSTART.read_bytes()).module_def.raw_v9_json()
    assert [t["name"] for t in schema["tables"]] == ["message", "user"]  # served sorted by name
    message = schema["tables"][0]
    assert message["product_type_ref"] == 1 and message["primary_key"] == [0]
    assert [(i["name"], i["accessor_name"], i["algorithm"]) for i in message["indexes"]] == [
        ({"some": "message_id_idx_btree"}, {"some": "id"}, {"BTree": [0]}),
        ({"some": "message_sent_idx_btree"}, {"some": "sent"}, {"BTree": [2]}),
    ]
    assert message["sequences"] == [
        {
            "name": {"some": "message_id_seq"},
            "column": 0,
            "start": {"none": []},
            "min_value": {"none": []},
            "max_value": {"none": []},
            "increment": 1,
        }
    ]
    assert [(r["name"], r["lifecycle"]) for r in schema["reducers"]] == [
        ("set_name", {"none": []}),
        ("send_message", {"none": []}),
        ("on_connect", {"some": {"OnConnect": []}}),
        ("on_disconnect", {"some": {"OnDisconnect": []}}),
    ]
    assert [t["name"]["name"] for t in schema["types"]] == ["Message", "User"]
    user_type = schema["typespace"]["types"][0]["Product"]["elements"]
    assert user_type[0] == {
        "name": {"some": "identity"},
        "algebraic_type": {
            "Product": {"elements": [{"name": {"some": "__identity__"}, "algebraic_type": {"U256": []}}]}
        },
    }
    assert user_type[1]["algebraic_type"] == {
        "Sum": {
            "variants": [
                {"name": {"some": "some"}, "algebraic_type": {"String": []}},
                {"name": {"some": "none"}, "algebraic_type": {"Product": {"elements": []}}},
            ]
        }
    }


def test_defaults_schedules_rls_and_named_types() -> None:
    schema = load_source(
        """
        class Color(enum.Enum):
            RED = 0
            BLUE = 1

        @table(scheduled="tick")
        class Timer:
            scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
            scheduled_at: ScheduleAt

        @table(public=True, indexes=[Index.hash("color", "level", name="by_color_level")])
        class Paint:
            level: Annotated[u8, Unique]
            color: Color = Color.BLUE
            label: str = "none"

        client_visibility_filter("SELECT * FROM paint WHERE level > 1")
        client_visibility_filter("SELECT * FROM paint WHERE label = 'a'")

        @reducer(lifecycle="init")
        def init(ctx: ReducerContext) -> None: ...

        @reducer
        def tick(ctx: ReducerContext, timer: Timer) -> None: ...

        @reducer
        def paint(ctx: ReducerContext, color: Color) -> None: ...
        """
    ).module_def.raw_v9_json()
    timer = next(t for t in schema["tables"] if t["name"] == "timer")
    assert timer["schedule"] == {
        "some": {"name": {"some": "timer_sched"}, "reducer_name": "tick", "scheduled_at_column": 1}
    }
    assert timer["table_access"] == {"Private": []}
    paint = next(t for t in schema["tables"] if t["name"] == "paint")
    assert paint["primary_key"] == []
    assert [i["name"]["some"] for i in paint["indexes"]] == [
        "paint_color_level_idx_hash",
        "paint_level_idx_btree",
    ]
    assert paint["indexes"][0]["algorithm"] == {"Hash": [1, 0]}
    assert paint["constraints"] == [
        {"name": {"some": "paint_level_key"}, "data": {"Unique": {"columns": [0]}}}
    ]
    assert schema["misc_exports"] == [
        {"ColumnDefaultValue": {"table": "paint", "col_id": 1, "value": "01"}},
        {"ColumnDefaultValue": {"table": "paint", "col_id": 2, "value": "040000006e6f6e65"}},
    ]
    assert schema["row_level_security"] == [
        {"sql": "SELECT * FROM paint WHERE label = 'a'"},
        {"sql": "SELECT * FROM paint WHERE level > 1"},
    ]
    assert [t["name"]["name"] for t in schema["types"]] == ["Color", "Paint", "Timer"]
    color_ref = next(t["ty"] for t in schema["types"] if t["name"]["name"] == "Color")
    paint_reducer = next(r for r in schema["reducers"] if r["name"] == "paint")
    assert paint_reducer["params"]["elements"][0]["algebraic_type"] == {"Ref": color_ref}
    assert schema["typespace"]["types"][color_ref] == {
        "Sum": {
            "variants": [
                {"name": {"some": "RED"}, "algebraic_type": {"Product": {"elements": []}}},
                {"name": {"some": "BLUE"}, "algebraic_type": {"Product": {"elements": []}}},
            ]
        }
    }
