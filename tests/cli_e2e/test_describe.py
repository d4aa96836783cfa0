"""`spacetime describe`: the whole schema, one table, one reducer; readable and --json."""

from __future__ import annotations

import json

import pytest

from .conftest import SHAPES, User, assert_one_line_error, hint_of, v10_section

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.fixture
def shapes_db(alice: User, db_name: str) -> str:
    alice.publish(db_name, SHAPES)
    return db_name


def test_describe_everything(alice: User, shapes_db: str):
    result = alice("describe", shapes_db)
    assert result.code == 0, result
    out = result.out
    assert out.startswith(f"Database {shapes_db}\n")
    assert "  drawing  (public)" in out and "  timer  (private)" in out
    assert "    scheduled: calls reducer tick at each row's scheduled_at" in out
    for row in (
        "id      U32            primary key",
        "label   String         unique",
        "color   Color",
        "path    Array<Point>",
        "anchor  Option<Point>",
        "scheduled_id  U64         primary key, auto-increment",
        "scheduled_at  ScheduleAt",
    ):
        assert f"      {row}\n" in out, row
    assert "by_color" in out and "btree (color, id)" in out
    assert "unique (label)" in out
    reducers = out.split("\nReducers\n")[1].split("\n\n")[0].splitlines()
    assert reducers == [
        "  init()  (lifecycle: init)",
        "  tick(timer: Timer)",
        "  draw(id: U32, label: String, color: Color, path: Array<Point>)",
    ]
    assert "  Color = {RED | GREEN}" in out
    assert "  Point = (x: F64, y: F64)" in out


def test_describe_one_table_and_one_reducer(alice: User, shapes_db: str):
    table = alice("describe", shapes_db, "table", "drawing")
    assert table.code == 0, table
    lines = table.out.splitlines()
    assert lines[0] == "drawing  (public)"
    assert "timer" not in table.out and "Reducers" not in table.out
    reducer = alice("describe", shapes_db, "reducer", "draw")
    assert reducer.out == "draw(id: U32, label: String, color: Color, path: Array<Point>)\n"


def test_describe_json(alice: User, shapes_db: str):
    """Upstream's CLI prints RawModuleDef V10 (crates/cli/src/subcommands/describe.rs asks for
    `/schema?version=10`), and for one item its RawTableDefV10 or RawReducerDefV10."""
    everything = json.loads(alice("describe", shapes_db, "--json").out)
    assert {t["source_name"] for t in v10_section(everything, "Tables")} == {"drawing", "timer"}
    assert v10_section(everything, "Typespace")["types"]
    assert v10_section(everything, "Schedules") == [
        {
            "source_name": {"some": "timer_sched"},
            "table_name": "timer",
            "schedule_at_col": 1,
            "function_name": "tick",
        }
    ]
    assert {"lifecycle_spec": {"Init": []}, "function_name": "init"} in v10_section(
        everything, "LifeCycleReducers"
    )
    table = json.loads(alice("describe", shapes_db, "table", "timer", "--json").out)
    assert table["source_name"] == "timer" and table["table_access"] == {"Private": []}
    assert "schedule" not in table and table["default_values"] == [] and table["is_event"] is False
    reducer = json.loads(alice("describe", shapes_db, "reducer", "init", "--json").out)
    assert reducer == {
        "source_name": "init",
        "params": {"elements": []},
        "visibility": {"Private": []},
        "ok_return_type": {"Product": {"elements": []}},
        "err_return_type": {"String": []},
    }
    missing = alice("describe", shapes_db, "table", "drawings", "--json")
    assert_one_line_error(missing, f"database '{shapes_db}' on {alice.url} has no table 'drawings'")


def test_describe_errors(alice: User, shapes_db: str):
    missing = alice("describe", shapes_db, "table", "drawings")
    assert_one_line_error(missing, f"database '{shapes_db}' on {alice.url} has no table 'drawings'")
    assert hint_of(missing) == "its tables: drawing, timer"
    assert_one_line_error(alice("describe", shapes_db, "reducer", "nope"), "has no reducer 'nope'")
    assert_one_line_error(alice("describe", shapes_db, "index", "x"), "table, reducer or view", code=2)
    assert_one_line_error(alice("describe", shapes_db, "table"), "give nothing, or an item", code=2)
    assert_one_line_error(alice("describe", "no-such-db"), "No such database")


def test_anyone_may_describe(bob: User, shapes_db: str):
    assert bob("describe", shapes_db, "reducer", "tick").out == "tick(timer: Timer)\n"
