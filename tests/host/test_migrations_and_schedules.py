import pytest

from spacetimedb.host.database import LaunchError
from spacetimedb.host.module_host import MigrationRefusedError

from .helpers import DB, OWNER, REMINDERS, LocalDatabases, call, rows, wait_until

BASE = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, Index, u32

@table(public=True)
class Player:
    id: Annotated[u32, PrimaryKey]
    name: str

@reducer
def add(ctx: ReducerContext, id: u32, name: str) -> None:
    ctx.db.player.insert(Player(id=id, name=name))
"""

ADD_TABLE_INDEX_COLUMN = (
    BASE.replace(
        b"@table(public=True)\nclass Player:",
        b"@table(public=False, indexes=[Index.btree('name')])\nclass Player:",
    ).replace(b"    name: str\n", b"    name: str\n    level: u32 = 1\n")
    + b"""
@table
class Guild:
    id: Annotated[u32, PrimaryKey]

@reducer
def level_of(ctx: ReducerContext, id: u32) -> None:
    assert ctx.db.player.id.find(id).level == 1
"""
)

REFUSED = {
    "remove a column": BASE.replace(b"    name: str\n", b""),
    "retype a column": BASE.replace(b"    name: str\n", b"    name: u32\n"),
    "add a column without a default": BASE.replace(b"    name: str\n", b"    name: str\n    level: u32\n"),
    "reorder the columns": BASE.replace(
        b"    id: Annotated[u32, PrimaryKey]\n    name: str\n",
        b"    name: str\n    id: Annotated[u32, PrimaryKey]\n",
    ),
    "remove a table with rows": b"from spacetimedb import reducer, ReducerContext\n@reducer\ndef nothing(ctx: ReducerContext) -> None: ...\n",
}


@pytest.fixture
def controller(tmp_path):
    hc = LocalDatabases(tmp_path)
    yield hc
    hc.shutdown()


def test_automatic_migration_applies_and_survives_restart(tmp_path, controller):
    controller.publish(DB, OWNER, BASE)
    host = controller.get_or_launch(DB)
    assert call(host, "add", 1, "ann").ok
    op, plan = controller.publish(DB, OWNER, ADD_TABLE_INDEX_COLUMN)
    assert op == "updated" and plan is not None and plan.is_automatic
    host = controller.get_or_launch(DB)
    assert call(host, "level_of", 1).ok
    assert rows(host, "player") == [(1, "ann", 1)]
    assert controller.publish(DB, OWNER, ADD_TABLE_INDEX_COLUMN)[0] == "unchanged"
    controller.shutdown()
    again = LocalDatabases(tmp_path)
    try:
        host = again.get_or_launch(DB)
        with host.db.read_tx() as tx:
            schema = tx.schema(tx.table_id("player"))
            assert not schema.public and any(i.columns == (1,) for i in schema.indexes)
            assert tx.table_id("guild") is not None
        assert rows(host, "player") == [(1, "ann", 1)]
        assert call(host, "add", 2, "bo").ok and call(host, "level_of", 2).ok
    finally:
        again.shutdown()


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_refused_migrations_change_nothing(controller, kind):
    controller.publish(DB, OWNER, BASE)
    host = controller.get_or_launch(DB)
    assert call(host, "add", 1, "ann").ok
    if kind == "remove a table with rows":
        # removing an empty table is automatic; one with rows is refused when applied
        with pytest.raises(LaunchError, match="player"):
            controller.publish(DB, OWNER, REFUSED[kind])
    else:
        with pytest.raises(MigrationRefusedError) as info:
            controller.publish(DB, OWNER, REFUSED[kind])
        assert info.value.plan.incompatible
    host = controller.get_or_launch(DB)
    assert rows(host, "player") == [(1, "ann")]
    assert call(host, "add", 2, "bo").ok


def test_clear_republishes_from_scratch(controller):
    controller.publish(DB, OWNER, BASE)
    assert call(controller.get_or_launch(DB), "add", 1, "ann").ok
    assert controller.publish(DB, OWNER, REFUSED["retype a column"], clear=True)[0] == "created"
    assert rows(controller.get_or_launch(DB), "player") == []


def test_interval_and_one_shot_schedules_cancel_and_survive_restart(tmp_path, controller):
    controller.publish(DB, OWNER, REMINDERS)
    host = controller.get_or_launch(DB)
    assert wait_until(lambda: rows(host, "counter")[0][1] >= 2, timeout=6)  # the 1 s interval timer ticks
    assert call(host, "remind_me", "soon", 0).ok
    assert call(host, "remind_me", "cancelled", 1).ok
    assert wait_until(lambda: [n[2] for n in rows(host, "notice")] == ["soon"], timeout=5)
    pending = [r for r in rows(host, "reminder") if r[3] == "cancelled"]
    assert len(pending) == 1
    outcome = host.call_reducer_sync("send_reminder", [list(pending[0])], sender=OWNER, json_args=True)
    assert not outcome.ok  # scheduled reducers refuse other callers in this module

    # cancel by deleting the row
    def cancel(tx):
        return tx.delete(tx.table_id("reminder"), pending[0])

    from concurrent.futures import Future

    done: Future = Future()
    host.run_in_transaction(cancel, done.set_result)
    assert done.result(5).value is True
    assert call(host, "remind_me", "after restart", 2).ok
    controller.shutdown()

    again = LocalDatabases(tmp_path)
    try:
        host = again.get_or_launch(DB)
        ticks = rows(host, "counter")[0][1]
        assert wait_until(lambda: rows(host, "counter")[0][1] > ticks, timeout=6)
        assert wait_until(lambda: "after restart" in [n[2] for n in rows(host, "notice")], timeout=6)
        assert "cancelled" not in [n[2] for n in rows(host, "notice")]
        assert all(r[3] != "after restart" for r in rows(host, "reminder"))  # one-shot rows are deleted
    finally:
        again.shutdown()


IMMEDIATE = b"""
from spacetimedb import table, reducer, ReducerContext, Identity

@table(public=True)
class Entry:
    text: str
    sender: Identity

@reducer
def append(ctx: ReducerContext, text: str) -> None:
    ctx.db.entry.insert(Entry(text=text, sender=ctx.sender))

@reducer
def schedule_then_fail(ctx: ReducerContext, text: str) -> None:
    ctx.volatile_nonatomic_schedule_immediate(append, text)
    ctx.volatile_nonatomic_schedule_immediate("append", text + " by name")
    raise ValueError("this call fails; what it scheduled runs all the same")

@reducer
def schedule_wrongly(ctx: ReducerContext) -> None:
    ctx.volatile_nonatomic_schedule_immediate(append, 1, 2)
"""


def test_volatile_nonatomic_schedule_immediate_runs_after_the_call_even_a_failed_one(controller):
    # upstream's cluster/schedule_reducer.rs test_volatile_nonatomic_schedule_immediate, and the "nonatomic" part:
    # the scheduled call is not undone with the call that asked for it
    controller.publish(DB, OWNER, IMMEDIATE)
    host = controller.get_or_launch(DB)
    failed = call(host, "schedule_then_fail", "hello")
    assert not failed.ok and "runs all the same" in (failed.message or "")
    assert wait_until(lambda: len(rows(host, "entry")) == 2)
    assert sorted(row[0] for row in rows(host, "entry")) == ["hello", "hello by name"]
    assert {row[1] for row in rows(host, "entry")} == {DB}  # a call from the database itself
    wrong = call(host, "schedule_wrongly")
    assert not wrong.ok and "append" in (wrong.message or "")
