"""Every refusal of an invalid module, with a message naming the offending declaration."""

from __future__ import annotations

import pytest

from spacetimedb.module import ModuleError

from .helpers import load_source

TABLE_OK = """
        @table
        class Ok:
            id: Annotated[u32, PrimaryKey]
        """

CASES = {
    "unknown annotation": (
        """
        @table
        class Bad:
            data: dict[str, int]
        """,
        [
            "table `bad` (class Bad at module.py:",
            "field `data` of `Bad`",
            "`dict[str, int]` is not a column or argument type: use a list of a @type record with key and value fields",
        ],
    ),
    "undecorated class as column": (
        """
        class Plain:
            x: int

        @table
        class Bad:
            p: Plain
        """,
        ["table `bad`", "class `Plain` is not a SATS type (decorate it with @type or @table)"],
    ),
    "unknown name in annotation": (
        """
        @table
        class Bad:
            p: "Missing"
        """,
        ["table `bad`", "unknown name", "Missing"],
    ),
    "alias on the wrong base": (
        """
        @table
        class Bad:
            p: Annotated[str, u8.__metadata__[0]]
        """,
        ["table `bad`", "`u8` annotates int, not str"],
    ),
    "duplicate table name": (
        """
        @table(name="things")
        class A:
            id: u32

        @table(name="things")
        class B:
            id: u32
        """,
        ["table `things` (class B at module.py:", "duplicate table name `things`"],
    ),
    "system table name": (
        """
        @table(name="st_table")
        class A:
            id: u32
        """,
        ["table `st_table`", "is the name of a system table"],
    ),
    "invalid table name": (
        """
        @table(name="my table")
        class A:
            id: u32
        """,
        ["table name `my table` is not a valid identifier"],
    ),
    "table without columns": (
        """
        @table
        class Empty:
            pass
        """,
        ["table `empty`", "a table needs at least one column"],
    ),
    "duplicate reducer name": (
        TABLE_OK
        + """
        @reducer(name="go")
        def first(ctx: ReducerContext) -> None: ...

        @reducer(name="go")
        def second(ctx: ReducerContext) -> None: ...
        """,
        ["reducer `go` (at module.py:", "duplicate reducer name"],
    ),
    "duplicate index name": (
        """
        @table(indexes=[Index.btree("sent")])
        class Msg:
            id: Annotated[u32, PrimaryKey]
            sent: Annotated[Timestamp, Index.btree]
        """,
        ["table `msg`", "duplicate index `msg_sent_idx_btree` on [sent]"],
    ),
    "duplicate index accessor": (
        """
        @table(indexes=[Index.btree("a", "b", name="pair"), Index.hash("b", "a", name="pair")])
        class Pairs:
            a: u32
            b: u32
        """,
        ["table `pairs`", "two indexes have the accessor name `pair`"],
    ),
    "index on an unknown column": (
        """
        @table(indexes=[Index.btree("nope")])
        class T:
            a: u32
        """,
        ["table `t`", "Index.btree('nope') refers to unknown column(s) nope"],
    ),
    "index accessor hiding a handle method": (
        """
        @table
        class T:
            count: Annotated[u32, Unique]
        """,
        ["table `t`", "the index accessor `count` would hide ctx.db.t.count()"],
    ),
    "index accessor with an underscore": (
        """
        @table
        class T:
            _slot: Annotated[u32, Unique]
        """,
        ["table `t`", "the index accessor `_slot` must not start with an underscore"],
    ),
    "index on a float": (
        """
        @table
        class T:
            x: Annotated[f64, Index.btree]
        """,
        ["table `t`", "column `x` of type F64 cannot be indexed"],
    ),
    "primary key on a float": (
        """
        @table
        class T:
            x: Annotated[f32, PrimaryKey]
        """,
        ["table `t`", "column `x`: a primary key cannot have type F32"],
    ),
    "primary key on an array": (
        """
        @table
        class T:
            x: Annotated[list[u32], PrimaryKey]
        """,
        ["column `x`: a primary key cannot have type Array<U32>"],
    ),
    "primary key on an option": (
        """
        @table
        class T:
            x: Annotated[Optional[u32], PrimaryKey]
        """,
        ["column `x`: a primary key cannot have type Option<U32>"],
    ),
    "unique on a product": (
        """
        @stdb_type
        class P:
            a: u8

        @table
        class T:
            x: Annotated[P, Unique]
        """,
        ["column `x`: a unique column cannot have type (a: U8)"],
    ),
    "two primary keys": (
        """
        @table
        class T:
            a: Annotated[u32, PrimaryKey]
            b: Annotated[u32, PrimaryKey]
        """,
        ["table `t`", "two primary keys (`a` and `b`)"],
    ),
    "auto_inc on a string": (
        """
        @table
        class T:
            name: Annotated[str, PrimaryKey, AutoInc]
        """,
        ["column `name`: AutoInc needs an integer column, not String"],
    ),
    "default of the wrong type": (
        """
        @table
        class T:
            id: Annotated[u32, PrimaryKey]
            level: u8 = 300
        """,
        ["column `level`: default value 300 does not fit the column's type", "out of range for U8"],
    ),
    "default on a primary key": (
        """
        @table
        class T:
            id: Annotated[u32, PrimaryKey] = 7
        """,
        ["column `id`: a primary key or unique column cannot have a default value"],
    ),
    "markers in a @type": (
        """
        @stdb_type
        class P:
            a: Annotated[u8, PrimaryKey]

        @table
        class T:
            p: P
        """,
        ["type `P`", "field `a`: column markers are only allowed in @table classes"],
    ),
    "recursive type as a column": (
        """
        @stdb_type
        class Node:
            value: u32
            children: list[Node]

        @table
        class Tree:
            root: Node
        """,
        ["table `tree`", "column `root`: type `Node` is recursive and cannot be stored in a table"],
    ),
    "unnamed union": (
        """
        @stdb_type
        class A:
            x: u8

        @stdb_type
        class B:
            y: u8

        @table
        class T:
            v: A | B
        """,
        ["table `t`", "the union `A | B` must be declared as a named sum"],
    ),
    # as upstream (crates/schema/src/def/validate/v9.rs validate_schedule_def): the schedule's id is the table's
    # u64 primary key and its time any ScheduleAt column, whatever their names; AutoInc is not required
    "scheduled table without a ScheduleAt column": (
        """
        @table(scheduled="tick")
        class Timer:
            id: Annotated[u64, PrimaryKey, AutoInc]
            when: u64

        @reducer
        def tick(ctx: ReducerContext, timer: Timer) -> None: ...
        """,
        ["table `timer`", "a scheduled table needs a column of type ScheduleAt"],
    ),
    "scheduled table whose primary key is not a u64": (
        """
        @table(scheduled="tick")
        class Timer:
            id: Annotated[str, PrimaryKey]
            when: ScheduleAt

        @reducer
        def tick(ctx: ReducerContext, timer: Timer) -> None: ...
        """,
        ["table `timer`", "a scheduled table needs a `u64` primary key"],
    ),
    "scheduled table with two ScheduleAt columns and no choice": (
        """
        @table(scheduled="tick")
        class Timer:
            id: Annotated[u64, PrimaryKey, AutoInc]
            first: ScheduleAt
            second: ScheduleAt

        @reducer
        def tick(ctx: ReducerContext, timer: Timer) -> None: ...
        """,
        ["table `timer`", "several ScheduleAt columns (first, second)"],
    ),
    "scheduled_at naming a column that is not a ScheduleAt": (
        """
        @table(scheduled="tick", scheduled_at="id")
        class Timer:
            id: Annotated[u64, PrimaryKey, AutoInc]
            when: ScheduleAt

        @reducer
        def tick(ctx: ReducerContext, timer: Timer) -> None: ...
        """,
        ["table `timer`", "scheduled_at='id' must name a column of type ScheduleAt"],
    ),
    "scheduled reducer missing": (
        """
        @table(scheduled="nope")
        class Timer:
            scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
            scheduled_at: ScheduleAt
        """,
        ["table `timer`", "scheduled reducer or procedure `nope` does not exist"],
    ),
    "scheduled reducer with wrong params": (
        """
        @table(scheduled="tick")
        class Timer:
            scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
            scheduled_at: ScheduleAt

        @reducer
        def tick(ctx: ReducerContext, n: u32) -> None: ...
        """,
        [
            "table `timer`",
            "scheduled reducer `tick` must take (ctx: ReducerContext, row: Timer), not (ctx, n: U32)",
        ],
    ),
    "reducer param that is not a SATS type": (
        TABLE_OK
        + """
        @reducer
        def go(ctx: ReducerContext, data: set[int]) -> None: ...
        """,
        [
            "reducer `go` (at module.py:",
            "parameter `data`: `set[int]` is not a column or argument type: use list[T]",
        ],
    ),
    "reducer param without annotation": (
        TABLE_OK
        + """
        @reducer
        def go(ctx: ReducerContext, data) -> None: ...
        """,
        ["reducer `go`", "parameter `data` needs a type annotation"],
    ),
    "reducer without parameters": (
        TABLE_OK
        + """
        @reducer
        def go() -> None: ...
        """,
        ["reducer `go`", "the first parameter must be the ReducerContext"],
    ),
    "reducer whose first parameter is not the context": (
        TABLE_OK
        + """
        @reducer
        def go(name: str) -> None: ...
        """,
        ["reducer `go`", "the first parameter must be the ReducerContext, but `name` is annotated str"],
    ),
    "reducer with *args": (
        TABLE_OK
        + """
        @reducer
        def go(ctx: ReducerContext, *names: str) -> None: ...
        """,
        ["reducer `go`", "parameter `names`: *args, **kwargs and keyword-only parameters are not allowed"],
    ),
    "two init reducers": (
        TABLE_OK
        + """
        @reducer(lifecycle="init")
        def init(ctx: ReducerContext) -> None: ...

        @reducer(lifecycle="init")
        def init_again(ctx: ReducerContext) -> None: ...
        """,
        ["reducer `init_again`", "a second `init` reducer (`init` is already one)"],
    ),
    "lifecycle reducer with arguments": (
        TABLE_OK
        + """
        @reducer(lifecycle="client_connected")
        def hello(ctx: ReducerContext, x: u32) -> None: ...
        """,
        ["reducer `hello`", "a `client_connected` reducer takes only the ReducerContext"],
    ),
    "rls on an unknown table": (
        TABLE_OK
        + """
        client_visibility_filter("SELECT * FROM nope WHERE id = 1")
        """,
        ["client_visibility_filter (at module.py:", "unknown table `nope`"],
    ),
    "rls on a private table": (
        TABLE_OK
        + """
        client_visibility_filter("SELECT * FROM ok WHERE id = 1")
        """,
        ["client_visibility_filter", "table `ok` is private"],
    ),
    "rls of another shape": (
        TABLE_OK
        + """
        client_visibility_filter("DELETE FROM ok")
        """,
        [
            "client_visibility_filter",
            "a row-level security rule must look like `SELECT t.* FROM t WHERE ...`",
        ],
    ),
    "two types with the same name": (
        """
        @stdb_type(name="Thing")
        class A:
            x: u8

        @stdb_type(name="Thing")
        class B:
            y: u8

        @table
        class T:
            a: A
            b: B
        """,
        ["type `Thing`", "two different types have this name"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_module(case: str) -> None:
    source, expected = CASES[case]
    with pytest.raises(ModuleError) as caught:
        load_source(source)
    message = str(caught.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_every_problem_is_reported() -> None:
    with pytest.raises(ModuleError) as caught:
        load_source(
            """
            @table
            class A:
                x: Annotated[f64, PrimaryKey]

            @table
            class B:
                y: dict[str, str]

            @reducer
            def r(ctx: ReducerContext, z: object) -> None: ...
            """
        )
    assert len(caught.value.problems) == 3
    assert str(caught.value).startswith("the module is invalid (3 problems):")


def test_decorator_errors_name_the_line() -> None:
    with pytest.raises(
        ModuleError, match=r"module.py:\d+: @reducer at module.py:\d+: unknown lifecycle 'boot'"
    ):
        load_source(
            """
            @reducer(lifecycle="boot")
            def r(ctx: ReducerContext) -> None: ...
            """
        )
    with pytest.raises(ModuleError, match="must not define __init__"):
        load_source(
            """
            @table
            class T:
                x: u8
                def __init__(self) -> None: ...
            """
        )
    with pytest.raises(ModuleError, match=r"indexes= takes Index\.btree"):
        load_source(
            """
            @table(indexes=["a"])
            class T:
                a: u8
            """
        )


def test_valid_module_with_rls() -> None:
    module = load_source(
        """
        @table(public=True)
        class Account:
            identity: Annotated[Identity, PrimaryKey]
            balance: u64

        @table(public=True)
        class Membership:
            member: Annotated[Identity, Index.btree]
            group_id: u32

        client_visibility_filter("SELECT * FROM account WHERE identity = :sender")
        client_visibility_filter(
            "SELECT m.* FROM membership AS m JOIN account a ON a.identity = m.member WHERE a.identity = :sender"
        )
        """
    ).module_def
    assert [(r.table, r.sql[:20]) for r in module.row_level_security] == [
        ("account", "SELECT * FROM accoun"),
        ("membership", "SELECT m.* FROM memb"),
    ]


def test_a_scheduled_table_may_name_its_columns_as_it_likes() -> None:
    """Upstream's `#[table(scheduled(tick, at = sched_at))]` (smoketests' schedule modules): any names, and a
    ScheduleAt column chosen with scheduled_at= when there are several."""
    from spacetimedb.module import load_module

    program = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, ScheduleAt, PrimaryKey, AutoInc, u64

@table(scheduled="tick", scheduled_at="sched_at")
class Timer:
    timer_id: Annotated[u64, PrimaryKey]
    not_this: ScheduleAt
    sched_at: ScheduleAt

@table(scheduled="tock")
class Alarm:
    id: Annotated[u64, PrimaryKey, AutoInc]
    ring_at: ScheduleAt

@reducer
def tick(ctx: ReducerContext, timer: Timer) -> None: ...

@reducer
def tock(ctx: ReducerContext, alarm: Alarm) -> None: ...
"""
    module = load_module(program).module_def
    timer, alarm = module.table("timer"), module.table("alarm")
    assert timer.schedule is not None and (timer.schedule.at_column, timer.schedule.id_column) == (2, 0)
    assert alarm.schedule is not None and (alarm.schedule.at_column, alarm.schedule.id_column) == (1, 0)
    with pytest.raises(ModuleError, match="scheduled_at= names the ScheduleAt column of a scheduled table"):
        load_module(program.replace(b'scheduled="tock"', b'scheduled_at="ring_at"'))


def test_a_scheduled_reducer_fires_with_columns_named_as_the_module_likes(tmp_path) -> None:
    from spacetimedb.testing import TestDatabase

    module = tmp_path / "alarms.py"
    module.write_text(
        """
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, ScheduleAt, PrimaryKey, AutoInc, Timestamp, u64

@table(scheduled="ring", scheduled_at="ring_at")
class Alarm:
    alarm_id: Annotated[u64, PrimaryKey, AutoInc]
    created_at: ScheduleAt
    ring_at: ScheduleAt

@table(public=True)
class Rang:
    alarm_id: Annotated[u64, PrimaryKey]

@reducer
def set_alarm(ctx: ReducerContext, seconds: u64) -> None:
    later = ScheduleAt.time(Timestamp(ctx.timestamp.micros + seconds * 1_000_000))
    ctx.db.alarm.insert(Alarm(alarm_id=0, created_at=ScheduleAt.time(ctx.timestamp), ring_at=later))

@reducer
def ring(ctx: ReducerContext, alarm: Alarm) -> None:
    ctx.db.rang.insert(Rang(alarm_id=alarm.alarm_id))
"""
    )
    db = TestDatabase.load(module)
    try:
        db.call("set_alarm", 10)
        assert db.advance(5) == 0 and db.rows("rang") == []
        assert db.advance(6) == 1
        assert [row.alarm_id for row in db.rows("rang")] == [1]
        assert db.rows("alarm") == []  # a one-shot schedule's row goes once it has run
    finally:
        db.close()
