"""Upstream's cluster/schedule_reducer.rs: scheduled reducers and procedures, their cleanup, and the views over
their tables, with the modules schedule-cancel, schedule-subscribe, schedule-procedure and schedule-volatile
rewritten in Python."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import Smoke, Subscriptions, publish, subscriptions

__all__ = ["subscriptions"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SCHEDULE_CANCEL = """
    from typing import Annotated

    import spacetimedb
    from spacetimedb import AutoInc, PrimaryKey, ReducerContext, ScheduleAt, TimeDuration, i32, reducer, table, u64


    @table(name="scheduled_reducer_args", public=True, scheduled="reducer")
    class ScheduledReducerArgs:
        scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
        scheduled_at: ScheduleAt
        num: i32


    @reducer(lifecycle="init")
    def init(ctx: ReducerContext) -> None:
        first = ctx.db.scheduled_reducer_args.insert(
            ScheduledReducerArgs(scheduled_id=0, scheduled_at=ScheduleAt.interval(TimeDuration(100_000)), num=1)
        )
        ctx.db.scheduled_reducer_args.scheduled_id.delete(first.scheduled_id)
        second = ctx.db.scheduled_reducer_args.insert(
            ScheduledReducerArgs(scheduled_id=0, scheduled_at=ScheduleAt.interval(TimeDuration(1_000_000)), num=2)
        )
        do_cancel(ctx, second.scheduled_id)


    @reducer
    def do_cancel(ctx: ReducerContext, schedule_id: u64) -> None:
        ctx.db.scheduled_reducer_args.scheduled_id.delete(schedule_id)


    @reducer(name="reducer")
    def run_scheduled(ctx: ReducerContext, args: ScheduledReducerArgs) -> None:
        spacetimedb.log.info(f"the reducer ran: {args.num}")
"""

# The table and its views, shared by the reducer and the procedure variants: {kind} is `reducer` or `procedure`.
SCHEDULED_TABLE = """
    from typing import Annotated

    import spacetimedb
    from spacetimedb import (
        AutoInc, Identity, PrimaryKey, ProcedureContext, ReducerContext, ScheduleAt, TimeDuration, Timestamp,
        ViewContext, procedure, reducer, table, u64, view,
    )


    @table(name="scheduled_table", public=True, scheduled="my_{kind}", scheduled_at="sched_at")
    class ScheduledTable:
        scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
        sched_at: ScheduleAt
        prev: Timestamp


    @view(public=True)
    def scheduled_view(ctx: ViewContext) -> list[ScheduledTable]:
        return list(ctx.db.scheduled_table.iter())


    def schedule(ctx: ReducerContext, scheduled_id: u64, at: ScheduleAt) -> None:
        ctx.db.scheduled_table.insert(ScheduledTable(scheduled_id=scheduled_id, sched_at=at, prev=Timestamp.UNIX_EPOCH))


    def log_invocation(now: Timestamp, row: ScheduledTable) -> None:
        spacetimedb.log.info(f"Invoked: ts={{now.micros}}, delta={{now.micros - row.prev.micros}}us")


    @reducer
    def schedule_{kind}(ctx: ReducerContext) -> None:
        schedule(ctx, 2, ScheduleAt.time(Timestamp.UNIX_EPOCH))


    @reducer
    def schedule_repeated_{kind}(ctx: ReducerContext) -> None:
        schedule(ctx, 1, ScheduleAt.interval(TimeDuration(100_000)))
"""

SCHEDULE_SUBSCRIBE = (
    SCHEDULED_TABLE.format(kind="reducer")
    + """

    @table(name="failing_scheduled_table", public=True, scheduled="failing_reducer", scheduled_at="sched_at")
    class FailingScheduledTable:
        scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
        sched_at: ScheduleAt
        prev: Timestamp


    @table(name="player_entity", public=True)
    class PlayerEntity:
        entity_id: Annotated[u64, PrimaryKey]
        owner: Identity


    def owned_entities(ctx: ViewContext) -> list[u64]:
        return [entity.entity_id for entity in ctx.db.player_entity.iter() if entity.owner == ctx.sender]


    @view(public=True)
    def scheduled_sender_view(ctx: ViewContext) -> list[ScheduledTable]:
        rows = (ctx.db.scheduled_table.scheduled_id.find(entity) for entity in owned_entities(ctx))
        return [row for row in rows if row is not None]


    @view(public=True)
    def failing_scheduled_sender_view(ctx: ViewContext) -> list[FailingScheduledTable]:
        rows = (ctx.db.failing_scheduled_table.scheduled_id.find(entity) for entity in owned_entities(ctx))
        return [row for row in rows if row is not None]


    @reducer
    def schedule_failing_reducer(ctx: ReducerContext) -> None:
        ctx.db.failing_scheduled_table.insert(
            FailingScheduledTable(scheduled_id=3, sched_at=ScheduleAt.time(Timestamp.UNIX_EPOCH), prev=Timestamp.UNIX_EPOCH)
        )


    @reducer
    def seed_player_entity(ctx: ReducerContext, entity_id: u64) -> None:
        ctx.db.player_entity.entity_id.delete(entity_id)
        ctx.db.player_entity.insert(PlayerEntity(entity_id=entity_id, owner=ctx.sender))


    @reducer
    def my_reducer(ctx: ReducerContext, arg: ScheduledTable) -> None:
        log_invocation(ctx.timestamp, arg)


    @reducer
    def failing_reducer(ctx: ReducerContext, arg: FailingScheduledTable) -> None:
        raise RuntimeError("scheduled reducer failed")
"""
)

SCHEDULE_PROCEDURE = (
    SCHEDULED_TABLE.format(kind="procedure")
    + """

    @procedure
    def my_procedure(ctx: ProcedureContext, arg: ScheduledTable) -> None:
        log_invocation(ctx.timestamp, arg)
"""
)

SCHEDULE_VOLATILE = """
    import spacetimedb
    from spacetimedb import ReducerContext, reducer, table


    @table(name="my_table", public=True)
    class MyTable:
        x: str


    @reducer
    def do_schedule(ctx: ReducerContext) -> None:
        ctx.volatile_nonatomic_schedule_immediate(do_insert, "hello")


    @reducer
    def do_insert(ctx: ReducerContext, x: str) -> None:
        ctx.db.my_table.insert(MyTable(x=x))
"""

EPOCH = {"__timestamp_micros_since_unix_epoch__": 0}


def time_row_entry(scheduled_id: int) -> dict[str, Any]:
    return {"prev": EPOCH, "scheduled_id": scheduled_id, "sched_at": {"Time": EPOCH}}


def interval_row_entry(scheduled_id: int, duration_micros: int) -> dict[str, Any]:
    return {
        "prev": EPOCH,
        "scheduled_id": scheduled_id,
        "sched_at": {"Interval": {"__time_duration_micros__": duration_micros}},
    }


@pytest.fixture
def deploy(alice: User, db_name: str, python_module: Callable[[str], Path]) -> Callable[[str], Smoke]:
    """Publish a module source to this test's database (upstream's ``Smoketest::builder().precompiled_module``)."""
    return lambda source: publish(alice, db_name, python_module(source))


def assert_one_shot_row_comes_and_goes(
    subscriptions: Subscriptions, smoke: Smoke, table: str, view: str, schedule: str, scheduled_id: int
) -> None:
    """Subscribe to ``table`` and ``view``, call ``schedule`` (which inserts a one-shot row due at once): one
    transaction inserts the row in both, the scheduled call's cleanup deletes it from both."""
    subscription = subscriptions(smoke, f"SELECT * FROM {table}", f"SELECT * FROM {view}", n=2)
    smoke.call(schedule)
    row = time_row_entry(scheduled_id)
    assert subscription.collect() == [
        {table: {"deletes": [], "inserts": [row]}, view: {"deletes": [], "inserts": [row]}},
        {table: {"deletes": [row], "inserts": []}, view: {"deletes": [row], "inserts": []}},
    ]


def assert_interval_row_repeats_and_stays(subscriptions: Subscriptions, smoke: Smoke, kind: str) -> None:
    """``schedule_repeated_<kind>`` inserts a 100 ms interval row: its function runs again and again (upstream
    waits 2 s and wants more than two runs) and the row is never deleted, so a subscriber sees its insert and then
    the next change, the one-shot row of ``schedule_<kind>``."""
    subscription = subscriptions(smoke, "SELECT * FROM scheduled_table", n=2)
    smoke.call(f"schedule_repeated_{kind}")
    time.sleep(2)
    assert sum("Invoked:" in message for message in smoke.logs(100)) > 2
    smoke.call(f"schedule_{kind}")
    assert subscription.collect() == [
        {"scheduled_table": {"deletes": [], "inserts": [interval_row_entry(1, 100_000)]}},
        {"scheduled_table": {"deletes": [], "inserts": [time_row_entry(2)]}},
    ]


def test_cancel_reducer(deploy: Callable[[str], Smoke]) -> None:
    """Upstream test_cancel_reducer: rows deleted in `init` (directly and through another reducer) cancel their
    schedules, so the scheduled reducer never runs."""
    smoke = deploy(SCHEDULE_CANCEL)
    time.sleep(2)  # upstream waits 2 s for a wrongly kept schedule (100 ms and 1 s) to fire
    assert not any("the reducer ran" in message for message in smoke.logs(5))


def test_scheduled_table_and_view_subscription(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_scheduled_table_and_view_subscription: the insert of a one-shot row and its automatic
    deletion after the call update the scheduled table and a view over it in the same transactions."""
    smoke = deploy(SCHEDULE_SUBSCRIBE)
    assert_one_shot_row_comes_and_goes(
        subscriptions, smoke, "scheduled_table", "scheduled_view", "schedule_reducer", 2
    )


def test_scheduled_table_subscription_repeated_reducer(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_scheduled_table_subscription_repeated_reducer: an interval row runs its reducer again and
    again and is never deleted, so subscribers see its insert and nothing more."""
    assert_interval_row_repeats_and_stays(subscriptions, deploy(SCHEDULE_SUBSCRIBE), "reducer")


def test_scheduled_procedure_table_and_view_subscription(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_scheduled_procedure_table_and_view_subscription: a scheduled procedure's one-shot row is
    deleted after its call, in a transaction that updates the table and its view together."""
    smoke = deploy(SCHEDULE_PROCEDURE)
    assert_one_shot_row_comes_and_goes(
        subscriptions, smoke, "scheduled_table", "scheduled_view", "schedule_procedure", 2
    )


def test_view_refresh_for_scheduled_reducer(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_view_refresh_for_scheduled_reducer: a per-caller view over the scheduled table is refreshed
    by the scheduled call's cleanup."""
    smoke = deploy(SCHEDULE_SUBSCRIBE)
    smoke.call("seed_player_entity", "2")
    assert_one_shot_row_comes_and_goes(
        subscriptions, smoke, "scheduled_table", "scheduled_sender_view", "schedule_reducer", 2
    )


def test_view_refresh_on_failed_scheduled_reducer(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_view_refresh_on_failed_scheduled_reducer: a one-shot row whose reducer fails is deleted all
    the same, its view refreshed, and the failure is in the module log."""
    smoke = deploy(SCHEDULE_SUBSCRIBE)
    smoke.call("seed_player_entity", "3")
    assert_one_shot_row_comes_and_goes(
        subscriptions,
        smoke,
        "failing_scheduled_table",
        "failing_scheduled_sender_view",
        "schedule_failing_reducer",
        3,
    )
    assert any("scheduled reducer failed" in message for message in smoke.logs(100))


def test_scheduled_procedure_table_subscription_repeated_procedure(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_scheduled_procedure_table_subscription_repeated_procedure: an interval row keeps calling its
    procedure and stays in the table."""
    assert_interval_row_repeats_and_stays(subscriptions, deploy(SCHEDULE_PROCEDURE), "procedure")


def test_volatile_nonatomic_schedule_immediate(
    deploy: Callable[[str], Smoke], subscriptions: Subscriptions
) -> None:
    """Upstream test_volatile_nonatomic_schedule_immediate: a reducer asks for another reducer call to run right
    after it; subscribers see the direct insert and then the scheduled one."""
    smoke = deploy(SCHEDULE_VOLATILE)
    subscription = subscriptions(smoke, "SELECT * FROM my_table", n=2)
    smoke.call("do_insert", '"yay!"')
    smoke.call("do_schedule")
    assert subscription.collect() == [
        {"my_table": {"deletes": [], "inserts": [{"x": "yay!"}]}},
        {"my_table": {"deletes": [], "inserts": [{"x": "hello"}]}},
    ]
