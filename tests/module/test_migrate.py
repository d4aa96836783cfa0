"""Migration plans between module versions: every automatic kind applied, every refused kind listed."""

from __future__ import annotations

from typing import Any

import pytest

from spacetimedb import datastore as ds
from spacetimedb.module import (
    MigrationError,
    ModuleRuntime,
    apply_migration,
    plan_migration,
)
from spacetimedb.module.migrate import (
    ADD_COLUMNS,
    ADD_CONSTRAINT,
    ADD_INDEX,
    ADD_REDUCER,
    ADD_ROW_LEVEL_SECURITY,
    ADD_SCHEDULE,
    ADD_SEQUENCE,
    ADD_TABLE,
    CHANGE_ACCESS,
    CHANGE_COLUMN_TYPES,
    CHANGE_PRIMARY_KEY,
    DISCONNECT_ALL_CLIENTS,
    REMOVE_CONSTRAINT,
    REMOVE_INDEX,
    REMOVE_REDUCER,
    REMOVE_ROW_LEVEL_SECURITY,
    REMOVE_SCHEDULE,
    REMOVE_SEQUENCE,
    REMOVE_TABLE,
)

from .helpers import Db, load_source

BASE = """
@table(public=True)
class Player:
    id: Annotated[u64, PrimaryKey, AutoInc]
    name: Annotated[str, Unique]
    level: u32

@table
class Note:
    id: Annotated[u32, PrimaryKey]
    text: str

@reducer
def join(ctx: ReducerContext, name: str, level: u32) -> None:
    ctx.db.player.insert(Player(id=0, name=name, level=level))
"""


def migrate(db: Db, new_source: str) -> Any:
    """Plan and apply a migration to ``new_source`` in one transaction, then rebind a new runtime."""
    new = load_source(new_source)
    plan = plan_migration(db.loaded.module_def, new.module_def)
    tx = db.datastore.begin_mut_tx()
    try:
        apply_migration(tx, plan)
    except BaseException:
        db.datastore.rollback(tx)
        raise
    db.datastore.commit(tx)
    db.loaded = new
    db.runtime = ModuleRuntime(new)
    db.bind()
    return plan


def kinds(plan: Any) -> list[tuple[str, str | None, str | None]]:
    return [(s.kind, s.table, s.subject) for s in plan.steps]


def schema(db: Db, table: str) -> ds.TableSchema:
    tx = db.datastore.begin_tx()
    try:
        table_id = tx.table_id(table)
        assert table_id is not None, table
        return tx.schema(table_id)
    finally:
        tx.release()


def test_no_changes() -> None:
    module = load_source(BASE).module_def
    plan = plan_migration(module, load_source(BASE).module_def)
    assert plan.is_automatic and plan.steps == [] and not plan.changes_schema
    assert "No changes." in plan.pretty()


def test_add_table_index_and_reducer() -> None:
    db = Db(load_source(BASE))
    db.call("join", "ann", 3)
    new_source = (
        BASE.replace("    level: u32\n", "    level: Annotated[u32, Index.btree]\n", 1)
        + """
@table(public=True, indexes=[Index.btree("owner", "slot", name="by_owner_slot")])
class Item:
    id: Annotated[u64, PrimaryKey, AutoInc]
    owner: u64
    slot: u8

@reducer
def give(ctx: ReducerContext, owner: u64, slot: u8) -> None:
    ctx.db.item.insert(Item(id=0, owner=owner, slot=slot))
"""
    )
    plan = migrate(db, new_source)
    assert kinds(plan) == [
        (ADD_TABLE, "item", None),
        (ADD_INDEX, "player", "player_level_idx_btree"),
        (ADD_REDUCER, None, "give"),
    ]
    assert not plan.disconnects_clients
    assert [i.name for i in schema(db, "player").indexes if i.name == "player_level_idx_btree"]
    db.call("give", 1, 2)
    db.call("join", "bob", 7)
    with db.with_ctx() as ctx:
        assert [p.name for p in ctx.db.player.level.filter(range(5, 10))] == ["bob"]
        assert [i.slot for i in ctx.db.item.by_owner_slot.filter((1,))] == [2]
    text = plan.pretty()
    assert "▸ Created table item (public)" in text
    assert "• by_owner_slot" not in text and "• item_owner_slot_idx_btree on [owner, slot]" in text
    assert "▸ Created index player_level_idx_btree on [level] of table player" in text


def test_remove_index_change_access_and_remove_reducer() -> None:
    indexed = BASE.replace("    level: u32\n", "    level: Annotated[u32, Index.btree]\n", 1)
    db = Db(load_source(indexed))
    db.call("join", "ann", 3)
    new_source = BASE.replace("@table(public=True)\nclass Player", "@table\nclass Player").replace(
        "@reducer\ndef join", "def join"
    )
    plan = migrate(db, new_source)
    assert kinds(plan) == [
        (REMOVE_INDEX, "player", "player_level_idx_btree"),
        (REMOVE_REDUCER, None, "join"),
        (CHANGE_ACCESS, "player", "private"),
    ]
    player = schema(db, "player")
    assert player.public is False
    assert player.index_named("player_level_idx_btree") is None
    assert db.rows("player") == [(1, "ann", 3)]
    assert "▸ Changed access for table player (public → private)" in plan.pretty()


SCHEDULED = (
    BASE
    + """
@table(scheduled="tick")
class Timer:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    scheduled_at: ScheduleAt

@reducer
def tick(ctx: ReducerContext, timer: Timer) -> None:
    pass
"""
)


def test_add_and_remove_schedule() -> None:
    unscheduled = SCHEDULED.replace('@table(scheduled="tick")', "@table")
    db = Db(load_source(unscheduled))
    assert schema(db, "timer").schedule is None
    plan = migrate(db, SCHEDULED)
    assert kinds(plan) == [(ADD_SCHEDULE, "timer", "tick")]
    timer = schema(db, "timer")
    assert timer.schedule is not None and (timer.schedule.reducer_name, timer.schedule.at_column) == (
        "tick",
        1,
    )
    plan = migrate(db, unscheduled)
    assert kinds(plan) == [(REMOVE_SCHEDULE, "timer", "tick")]
    assert schema(db, "timer").schedule is None


def test_add_columns_with_defaults_rebuilds_the_table() -> None:
    db = Db(load_source(BASE))
    db.call("join", "ann", 3)
    db.call("join", "bob", 4)
    with_score = BASE.replace(
        "    level: u32\n", "    level: u32\n    score: u32 = 10\n    title: Optional[str] = None\n", 1
    )
    old_id = schema(db, "player").table_id
    plan = migrate(db, with_score)
    assert kinds(plan) == [(ADD_COLUMNS, "player", "score, title"), (DISCONNECT_ALL_CLIENTS, None, None)]
    assert plan.disconnects_clients
    player = schema(db, "player")
    assert player.table_id != old_id and [c.name for c in player.columns] == [
        "id",
        "name",
        "level",
        "score",
        "title",
    ]
    assert [i.name for i in player.indexes] == ["player_id_idx_btree", "player_name_idx_btree"]
    assert db.rows("player") == [(1, "ann", 3, 10, None), (2, "bob", 4, 10, None)]
    db.call("join", "cy", 5)  # the sequence continues: no id is handed out twice
    assert db.rows("player")[-1] == (3, "cy", 5, 10, None)
    text = plan.pretty()
    assert "+ score: U32 (default: 10)" in text and "+ title: Option<String> (default: None)" in text
    assert "!!! Warning: All clients will be disconnected" in text


def test_add_columns_keeps_schedule_and_rls() -> None:
    source = SCHEDULED.replace("@table\nclass Note", "@table(public=True)\nclass Note") + (
        '\nclient_visibility_filter("SELECT * FROM note WHERE id = 1")\n'
    )
    db = Db(load_source(source))
    db.call("join", "ann", 1)
    new_source = source.replace(
        "    scheduled_at: ScheduleAt\n", "    scheduled_at: ScheduleAt\n    label: str = 'x'\n"
    ).replace("    text: str\n", "    text: str\n    pinned: bool = False\n")
    migrate(db, new_source)
    timer, note = schema(db, "timer"), schema(db, "note")
    assert timer.schedule is not None and timer.schedule.reducer_name == "tick"
    assert [r for r in db.rows("st_row_level_security")] == [
        (note.table_id, "SELECT * FROM note WHERE id = 1")
    ]


def test_change_rls_disconnects() -> None:
    public_notes = BASE.replace("@table\nclass Note", "@table(public=True)\nclass Note")
    first_rule = public_notes + '\nclient_visibility_filter("SELECT * FROM note WHERE id = 1")\n'
    db = Db(load_source(first_rule))
    note_id = schema(db, "note").table_id
    assert db.rows("st_row_level_security") == [(note_id, "SELECT * FROM note WHERE id = 1")]
    second_rule = public_notes + '\nclient_visibility_filter("SELECT * FROM note WHERE id = 2")\n'
    plan = migrate(db, second_rule)
    assert kinds(plan) == [
        (REMOVE_ROW_LEVEL_SECURITY, "note", "SELECT * FROM note WHERE id = 1"),
        (ADD_ROW_LEVEL_SECURITY, "note", "SELECT * FROM note WHERE id = 2"),
        (DISCONNECT_ALL_CLIENTS, None, None),
    ]
    assert db.rows("st_row_level_security") == [(note_id, "SELECT * FROM note WHERE id = 2")]
    assert "▸ Created row level security policy: `SELECT * FROM note WHERE id = 2`" in plan.pretty()


def test_remove_empty_table() -> None:
    db = Db(load_source(BASE))
    without_notes = BASE.replace(
        "@table\nclass Note:\n    id: Annotated[u32, PrimaryKey]\n    text: str\n", ""
    )
    plan = migrate(db, without_notes)
    assert kinds(plan) == [(REMOVE_TABLE, "note", None), (DISCONNECT_ALL_CLIENTS, None, None)]
    tx = db.datastore.begin_tx()
    assert tx.table_id("note") is None
    tx.release()


def test_remove_table_with_rows_fails_at_apply_and_rolls_back() -> None:
    source = (
        BASE
        + """
@reducer
def note(ctx: ReducerContext, text: str) -> None:
    ctx.db.note.insert(Note(id=ctx.db.note.count() + 1, text=text))
"""
    )
    db = Db(load_source(source))
    db.call("note", "keep me")
    without_notes = BASE.replace(
        "@table\nclass Note:\n    id: Annotated[u32, PrimaryKey]\n    text: str\n", ""
    )
    with pytest.raises(MigrationError, match=r"cannot remove table note: it still has 1 row\(s\)"):
        migrate(db, without_notes)
    assert db.rows("note") == [(1, "keep me")]


def test_refused_changes_are_all_listed() -> None:
    old = load_source(
        """
        class Mood(enum.Enum):
            HAPPY = 0
            SAD = 1

        @table
        class A:
            id: Annotated[u64, PrimaryKey, AutoInc]
            name: str
            level: u32
            gone: bool

        @table
        class T:
            id: Annotated[u32, PrimaryKey]
            n: u32
            mood: Mood
            tags: list[str]
        """
    ).module_def
    new = load_source(
        """
        class Mood(enum.Enum):
            SAD = 0
            HAPPY = 1

        @table
        class A:
            id: Annotated[u64, PrimaryKey, AutoInc]
            level: u32
            name: str
            extra: u8

        @table
        class T:
            id: Annotated[u32, PrimaryKey]
            n: u64
            mood: Mood
            tags: list[u8]
        """
    ).module_def
    plan = plan_migration(old, new)
    assert not plan.is_automatic
    assert plan.incompatible == [
        "Removing the column gone from table a requires a manual migration",
        "Reordering the columns of table a requires a manual migration",
        "Adding the column extra to table a requires a default value (e.g. `extra: ... = <default>`)",
        "Changing the type of column n in table t from U32 to U64 requires a manual migration",
        "Changing the type of column mood in table t from {HAPPY | SAD} to {SAD | HAPPY} "
        "requires a manual migration",
        "Changing the type of column tags in table t from Array<String> to Array<U8> requires a manual migration",
    ]
    text = plan.pretty()
    assert "✗ This update cannot be applied automatically:" in text
    assert all(problem in text for problem in plan.incompatible)
    tx = ds.Datastore().begin_mut_tx()
    with pytest.raises(MigrationError, match="needs a manual migration"):
        apply_migration(tx, plan)


KEYED = """
class Mood(enum.Enum):
    HAPPY = 0
    SAD = 1

@table
class B:
    key: Annotated[u32, PrimaryKey]
    code: Annotated[str, Unique]
    other: u32
    counter: u64
    mood: Mood

@reducer
def add(ctx: ReducerContext, key: u32, code: str, other: u32) -> None:
    ctx.db.b.insert(B(key=key, code=code, other=other, counter=0, mood=Mood.SAD))
"""

REKEYED = """
class Mood(enum.Enum):
    HAPPY = 0
    SAD = 1
    BORED = 2

@table
class B:
    key: u32
    code: str
    other: Annotated[u32, PrimaryKey]
    counter: Annotated[u64, AutoInc]
    mood: Mood

@reducer
def add(ctx: ReducerContext, key: u32, code: str, other: u32) -> None:
    ctx.db.b.insert(B(key=key, code=code, other=other, counter=0, mood=Mood.BORED))

@reducer
def by_other(ctx: ReducerContext, other: u32) -> None:
    assert ctx.db.b.other.find(other) is not None
"""


def test_keys_constraints_auto_inc_and_appended_variants_migrate_automatically() -> None:
    """Upstream's auto-migration (crates/schema/src/auto_migrate.rs: ChangePrimaryKey, AddConstraint /
    RemoveConstraint, AddSequence / RemoveSequence, ChangeColumns for sums with variants added at the end) makes
    all of these without a manual migration; the rows stay and none of it disconnects clients."""
    db = Db(load_source(KEYED))
    db.call("add", 1, "x", 10)
    db.call("add", 2, "x2", 20)
    plan = migrate(db, REKEYED)
    assert kinds(plan) == [
        (REMOVE_CONSTRAINT, "b", "code"),
        (REMOVE_CONSTRAINT, "b", "key"),
        (REMOVE_INDEX, "b", "b_code_idx_btree"),
        (REMOVE_INDEX, "b", "b_key_idx_btree"),
        (CHANGE_COLUMN_TYPES, "b", "mood"),
        (ADD_INDEX, "b", "b_other_idx_btree"),
        (ADD_CONSTRAINT, "b", "other"),
        (ADD_SEQUENCE, "b", "counter"),
        (CHANGE_PRIMARY_KEY, "b", "other"),
        (ADD_REDUCER, None, "by_other"),
    ]
    assert not plan.disconnects_clients
    b = schema(db, "b")
    assert b.primary_key == 2 and [c.columns for c in b.constraints] == [(2,)]
    assert [s.col_pos for s in b.sequences] == [3]
    db.call("add", 1, "x", 30)  # key and code no longer unique; counter now filled from its sequence
    db.call("by_other", 30)
    assert sorted(db.rows("b")) == [
        (1, "x", 10, 0, (1, ())),
        (1, "x", 30, 1, (2, ())),
        (2, "x2", 20, 0, (1, ())),
    ]
    back = plan_migration(db.loaded.module_def, load_source(KEYED).module_def)
    assert back.incompatible == [
        "Changing the type of column mood in table b from {HAPPY | SAD | BORED} to {HAPPY | SAD} "
        "requires a manual migration"
    ]
    assert (REMOVE_SEQUENCE, "b", "counter") in kinds(back)


def test_adding_a_unique_constraint_checks_the_rows() -> None:
    """Upstream's AddConstraint refuses, when applied, rows that would break the new constraint; the
    migration then changes nothing."""
    db = Db(load_source(KEYED))
    db.call("add", 1, "x", 10)
    db.call("add", 2, "y", 10)
    with pytest.raises(MigrationError, match="repeat a key"):
        migrate(db, KEYED.replace("    other: u32\n", "    other: Annotated[u32, Unique]\n"))
    assert [c.columns for c in schema(db, "b").constraints] == [(0,), (1,)]


def test_adding_auto_inc_checks_the_sequence_range() -> None:
    """Upstream's precheck CheckAddSequenceRangeValid: a column that already holds values the new sequence
    could hand out cannot become AutoInc ("Precheck failed: added sequence ... already has values in range")."""
    db = Db(load_source(KEYED))
    db.call("add", 1, "x", 10)
    with pytest.raises(
        MigrationError, match="Precheck failed: added sequence b_other_seq already has values"
    ):
        migrate(db, KEYED.replace("    other: u32\n", "    other: Annotated[u32, AutoInc]\n"))
    assert schema(db, "b").sequences == ()


def test_first_publish_creates_tables_sorted_with_rls() -> None:
    source = BASE.replace("@table\nclass Note", "@table(public=True)\nclass Note") + (
        '\nclient_visibility_filter("SELECT * FROM note WHERE id = 1")\n'
    )
    db = Db(load_source(source))  # uses create_module_tables
    note, player = schema(db, "note"), schema(db, "player")
    assert note.table_id < player.table_id  # created in name order
    assert player.public and not player.is_system and player.primary_key == 0
    assert [(s.name, s.max_value) for s in player.sequences] == [("player_id_seq", (1 << 64) - 1)]
    assert [c.name for c in player.constraints] == ["player_id_key", "player_name_key"]
    assert db.rows("st_row_level_security") == [(note.table_id, "SELECT * FROM note WHERE id = 1")]
