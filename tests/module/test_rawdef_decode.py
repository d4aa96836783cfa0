"""Decoding RawModuleDef V9 and V10 into a ModuleDef, with SpacetimeDB's names and validation rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spacetimedb.module import ModuleError, load_module
from spacetimedb.module.rawdef import raw_module_def_bsatn
from spacetimedb.module.rawdef_decode import (
    ModuleDefDecodeError,
    camel_case,
    decode_module_def,
    pascal_case,
    snake_case,
)
from spacetimedb.sats import (
    I64,
    SCHEDULE_AT,
    STRING,
    U16,
    U32,
    U64,
    ArrayType,
    ProductType,
    RefType,
    SumType,
    SumValue,
)
from spacetimedb.sats.meta import type_to_value

from ..host.foreign.wat import module_def_v10, product, reducer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    ROOT / "examples" / "chat" / "quickstart_chat.py",
    ROOT / "examples" / "scheduler" / "reminders.py",
    ROOT / "examples" / "keynote" / "keynote_module.py",
]
USER, SYSTEM, PUBLIC, PRIVATE = SumValue(1, ()), SumValue(0, ()), SumValue(0, ()), SumValue(1, ())


def section(name: str, payload: object) -> SumValue:
    tags = {
        "Typespace": 0,
        "Types": 1,
        "Tables": 2,
        "Reducers": 3,
        "Procedures": 4,
        "Views": 5,
        "Schedules": 6,
        "LifeCycleReducers": 7,
        "RowLevelSecurity": 8,
        "CaseConversionPolicy": 9,
        "ExplicitNames": 10,
        "HttpHandlers": 11,
        "HttpRoutes": 12,
        "ViewPrimaryKeys": 13,
        "Submodules": 14,
    }
    return SumValue(tags[name], payload)


def table(
    name: str, ref: int, *, pk=(), indexes=(), constraints=(), sequences=(), access=PUBLIC, event=False
):
    return (name, ref, list(pk), list(indexes), list(constraints), list(sequences), USER, access, [], event)


def btree(source: str, accessor: str, *cols: int) -> tuple[object, ...]:
    return (source, accessor, SumValue(0, list(cols)))


def unique(*cols: int) -> tuple[object, ...]:
    return (None, SumValue(0, (list(cols),)))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_v9_round_trips_the_projects_own_encoding(path: Path):
    original = load_module(path.read_bytes()).module_def
    decoded = decode_module_def(raw_module_def_bsatn(original))
    assert decoded.raw_v9_bsatn() == original.raw_v9_bsatn()
    assert list(decoded.reducers) == list(original.reducers)
    for name, table_def in original.tables.items():
        other = decoded.tables[name]
        assert other.indexes == table_def.indexes
        assert other.row_type == table_def.row_type
        assert other.schedule == table_def.schedule
        assert other.to_datastore_def() == table_def.to_datastore_def()


def fruit_module(extra: list[SumValue] | None = None) -> bytes:
    """Upstream's case-conversion test module (crates/schema/src/def/validate/v10.rs), as BSATN."""
    color = SumType.of("RedApple", "GreenApple", "YellowApple")
    typespace = [
        type_to_value(color),
        SumValue(2, product(("kind", U16))),
        SumValue(
            2,
            product(
                ("BasketId", U64), ("fruitName", STRING), ("ItemCount", U32), ("color_label", RefType(0))
            ),
        ),
        SumValue(2, product(("recordId", U64), ("ScheduledAt", SCHEDULE_AT), ("SeqId", U64))),
    ]
    types = [
        (([], "FruitColor"), 0, True),
        ((["myLib", "utils"], "metaInfo"), 1, False),
        (([], "FruitBasket"), 2, False),
        (([], "deliveryRecord"), 3, False),
    ]
    tables = [
        table(
            "FruitBasket",
            2,
            indexes=[
                btree("RawBasketLookup", "fruitNameIndex", 0, 1),
                ("RawCountDirect", "ItemCount", SumValue(2, 2)),
            ],
            constraints=[unique(2)],
            sequences=[(None, 0, None, None, None, 1)],
        ),
        table(
            "deliveryRecord",
            3,
            pk=[2],
            indexes=[btree("SeqIdIndex", "SeqId", 2)],
            constraints=[unique(2)],
            sequences=[(None, 2, None, None, None, 1)],
        ),
    ]
    reducers = [
        reducer("doDelivery", ("a", RefType(3))),
        reducer("ProcessItem", ("b", U32)),
    ]
    return module_def_v10(
        [
            section("Typespace", (typespace,)),
            section("Types", types),
            section("Tables", tables),
            section("Reducers", reducers),
            section("Schedules", [(None, "deliveryRecord", 1, "doDelivery")]),
            *(extra or []),
        ]
    )


def test_v10_default_policy_converts_names_as_upstream():
    module = decode_module_def(fruit_module())
    assert sorted(module.tables) == ["delivery_record", "fruit_basket"]
    fruit = module.tables["fruit_basket"]
    assert [c.name for c in fruit.columns] == ["basket_id", "fruit_name", "item_count", "color_label"]
    assert [(i.name, i.accessor_name, i.algorithm) for i in fruit.indexes] == [
        ("fruit_basket_basket_id_fruit_name_idx_btree", "fruitNameIndex", "btree"),
        ("fruit_basket_item_count_idx_direct", "ItemCount", "direct"),
    ]
    assert [c.name for c in fruit.constraints] == ["fruit_basket_item_count_key"]
    assert [s.name for s in fruit.sequences] == ["fruit_basket_basket_id_seq"]
    delivery = module.tables["delivery_record"]
    assert [c.name for c in delivery.columns] == ["record_id", "scheduled_at", "seq_id"]
    assert delivery.schedule is not None
    assert (delivery.schedule.name, delivery.schedule.reducer_name, delivery.schedule.at_column) == (
        "delivery_record_sched",
        "do_delivery",
        1,
    )
    assert list(module.reducers) == ["do_delivery", "process_item"]
    assert {(t.scope, t.name) for t in module.types} == {
        ((), "FruitColor"),
        (("MyLib", "Utils"), "MetaInfo"),
        ((), "FruitBasket"),
        ((), "DeliveryRecord"),
    }
    color = module.typespace[0]
    assert isinstance(color, SumType)
    assert [v.name for v in color.variants] == ["redApple", "greenApple", "yellowApple"]
    assert module.table_aliases == {"FruitBasket": "fruit_basket", "deliveryRecord": "delivery_record"}
    assert module.index_aliases["RawBasketLookup"] == "fruit_basket_basket_id_fruit_name_idx_btree"


def test_v10_policy_none_and_explicit_names():
    module = decode_module_def(
        fruit_module(
            [
                section("CaseConversionPolicy", SumValue(0, ())),
                section(
                    "ExplicitNames",
                    (
                        [
                            SumValue(0, ("FruitBasket", "baskets")),
                            SumValue(1, ("ProcessItem", "process")),
                            SumValue(2, ("RawBasketLookup", "by_name")),
                        ],
                    ),
                ),
            ]
        )
    )
    assert sorted(module.tables) == ["baskets", "deliveryRecord"]
    fruit = module.tables["baskets"]
    assert [c.name for c in fruit.columns] == ["BasketId", "fruitName", "ItemCount", "color_label"]
    assert [i.name for i in fruit.indexes] == ["by_name", "baskets_ItemCount_idx_direct"]
    assert list(module.reducers) == ["doDelivery", "process"]


def test_v10_sections_lifecycle_rls_defaults_and_events():
    typespace = [SumValue(2, product(("id", U32), ("n", I64)))]
    tables = [
        (
            "counter",
            0,
            [0],
            [btree("counter_id", "id", 0)],
            [unique(0)],
            [],
            USER,
            PRIVATE,
            [(1, (42).to_bytes(8, "little", signed=True))],
            False,
        ),
        table("happened", 0, event=True),
    ]
    module = decode_module_def(
        module_def_v10(
            [
                section("Typespace", (typespace,)),
                section("Tables", tables),
                section("Reducers", [reducer("onInit"), reducer("bump", ("by", I64))]),
                section("LifeCycleReducers", [(SumValue(0, ()), "onInit")]),
                section("RowLevelSecurity", [("SELECT * FROM counter WHERE id = 1",)]),
            ]
        )
    )
    counter = module.tables["counter"]
    assert counter.public is False and counter.primary_key == 0
    assert counter.columns[1].default == 42
    assert module.tables["happened"].is_event
    assert module.reducers["on_init"].lifecycle == "init"
    assert [(r.sql, r.table) for r in module.row_level_security] == [
        ("SELECT * FROM counter WHERE id = 1", "counter")
    ]


@pytest.mark.parametrize(
    ("extra", "piece"),
    [
        (
            section("Procedures", [("fetch", product(), type_to_value(STRING), SumValue(0, ()))]),
            "procedure `fetch` is private",
        ),
        (
            section("Views", [("mine", 0, True, False, product(), type_to_value(U32))]),
            "view `mine`: a view returns an array or an option",
        ),
        (
            section(
                "Views", [("mine", 0, True, False, product(("n", U32)), type_to_value(ArrayType(RefType(2))))]
            ),
            "view `mine`: views with parameters are not served",
        ),
        (section("HttpHandlers", [("hook",)]), "HTTP handler `hook`"),
        (section("Submodules", [("lib", ([],))]), "submodule `lib`"),
    ],
)
def test_what_cannot_be_served_is_refused_by_name(extra: SumValue, piece: str):
    with pytest.raises(ModuleError, match=piece):
        decode_module_def(fruit_module([extra]))


def test_invalid_definitions_are_refused():
    typespace = [SumValue(2, product(("id", U32)))]
    cases = {
        "no index on its columns": [table("t", 0, constraints=[unique(0)])],
        "reserved for system tables": [table("st_mine", 0)],
        "is not a product type": [table("t", 5)],
        "names column(s) [3]": [table("t", 0, indexes=[btree("t_x", "x", 3)])],
        "has no unique constraint": [table("t", 0, pk=[0])],
        "two definitions are named": [table("t", 0), table("t", 0)],
    }
    recursive = [SumValue(2, product(("id", U32), ("next", ArrayType(RefType(0)))))]
    with pytest.raises(ModuleError, match=re.escape("column `next`: type reference &0 is recursive")):
        decode_module_def(
            module_def_v10([section("Typespace", (recursive,)), section("Tables", [table("t", 0)])])
        )
    for message, tables in cases.items():
        with pytest.raises(ModuleError, match=re.escape(message)):
            decode_module_def(module_def_v10([section("Typespace", (typespace,)), section("Tables", tables)]))
    with pytest.raises(ModuleError, match="is private"):
        decode_module_def(
            module_def_v10(
                [
                    section(
                        "Reducers",
                        [
                            (
                                "hidden",
                                product(),
                                SumValue(0, ()),
                                type_to_value(ProductType(())),
                                type_to_value(STRING),
                            )
                        ],
                    )
                ]
            )
        )
    with pytest.raises(ModuleError, match="lifecycle names `ghost`"):
        decode_module_def(module_def_v10([section("LifeCycleReducers", [(SumValue(1, ()), "ghost")])]))


def test_bad_bytes_are_refused_with_the_version():
    with pytest.raises(ModuleDefDecodeError, match="V10 does not decode"):
        decode_module_def(b"\x02\xff")
    with pytest.raises(ModuleDefDecodeError, match="V8"):
        decode_module_def(b"\x00")
    with pytest.raises(ModuleDefDecodeError, match="unknown RawModuleDef version tag 7"):
        decode_module_def(b"\x07")
    with pytest.raises(ModuleDefDecodeError, match="no bytes"):
        decode_module_def(b"")


@pytest.mark.parametrize(
    ("source", "snake", "camel", "pascal"),
    [
        ("BasketId", "basket_id", "basketId", "BasketId"),
        ("fruitName", "fruit_name", "fruitName", "FruitName"),
        ("color_label", "color_label", "colorLabel", "ColorLabel"),
        ("HTTPRequest", "http_request", "httpRequest", "HttpRequest"),
        ("player2Score", "player_2_score", "player2Score", "Player2Score"),
        ("sayHello", "say_hello", "sayHello", "SayHello"),
    ],
)
def test_case_conversion_words(source: str, snake: str, camel: str, pascal: str):
    assert (snake_case(source), camel_case(source), pascal_case(source)) == (snake, camel, pascal)


BASKET_VIEW = section(
    "Views", [("basketView", 0, True, False, product(), type_to_value(ArrayType(RefType(2))))]
)


def test_v10_view_primary_keys_name_a_view_and_one_column_of_its_rows():
    """Upstream's attach_view_primary_keys (crates/schema/src/def/validate/v10.rs): names resolve by source name."""
    keyed = decode_module_def(
        fruit_module([BASKET_VIEW, section("ViewPrimaryKeys", [("basketView", ["ItemCount"])])])
    )
    assert keyed.views["basket_view"].primary_key == 2
    assert decode_module_def(fruit_module([BASKET_VIEW])).views["basket_view"].primary_key is None
    for keys, piece in (
        ([("basketView", ["Nope"])], "its primary key `Nope` is not a column of its rows"),
        ([("basketView", ["BasketId", "ItemCount"])], "a view's primary key is one column"),
        ([("basketView", ["BasketId"])] * 2, "its primary key is declared 2 times"),
        ([("otherView", ["BasketId"])], "names view `otherView`, which the module does not have"),
    ):
        with pytest.raises(ModuleError, match=re.escape(piece)):
            decode_module_def(fruit_module([BASKET_VIEW, section("ViewPrimaryKeys", keys)]))
