"""Port of upstream's cluster/delete_database.rs: ``spacetime delete`` asks first (and aborts, exit status 0,
without a yes), ``--yes`` says it skips the question, and deleting stops the module."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}

# upstream's "delete-database": a scheduled reducer bumps a counter every 100 ms
DELETE_DATABASE = """
    from typing import Annotated

    from spacetimedb import AutoInc, PrimaryKey, ReducerContext, ScheduleAt, TimeDuration, reducer, table, u64


    @table(public=True)
    class Counter:
        id: Annotated[u64, PrimaryKey]
        val: u64


    @table(public=True, scheduled="inc")
    class ScheduledCounter:
        scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
        sched_at: ScheduleAt


    @reducer
    def inc(ctx: ReducerContext, arg: ScheduledCounter) -> None:
        counter = ctx.db.counter.id.find(arg.scheduled_id)
        if counter is None:
            ctx.db.counter.insert(Counter(id=arg.scheduled_id, val=1))
        else:
            counter.val += 1
            ctx.db.counter.id.update(counter)


    @reducer(lifecycle="init")
    def init(ctx: ReducerContext) -> None:
        ctx.db.scheduled_counter.insert(
            ScheduledCounter(scheduled_id=0, sched_at=ScheduleAt.interval(TimeDuration.from_seconds(0.1)))
        )
"""


@pytest.fixture
def published(alice: User, db_name: str, python_module: Callable[[str], Path]) -> str:
    alice.publish(db_name, python_module(DELETE_DATABASE))
    return db_name


def assert_delete_prompt(output: str, database: str) -> None:
    assert "Are you sure you want to delete database" in output and database in output, output


def test_delete_database_aborts_without_confirmation(alice: User, published: str):
    result = alice("delete", published)
    assert result.code == 0, result
    assert_delete_prompt(result.out, published)
    assert "Aborting" in result.out
    assert alice("logs", published).code == 0


def test_delete_database_with_confirmation(alice: User, published: str):
    subscription = alice.start("subscribe", published, "SELECT * FROM counter", "-t", "30")
    try:
        assert subscription.stdout is not None
        first = subscription.stdout.readline()  # the counter's first update: the module runs
        assert json.loads(first), first
        result = alice("delete", published, input="y\n")
        assert result.code == 0, result
        assert_delete_prompt(result.out, published)
        out, _ = subscription.communicate(timeout=60)  # deleting the database ends the subscription
    finally:
        subscription.kill()
        subscription.wait()
    assert subscription.returncode is not None
    # at 10 updates a second, 30 seconds would give 300: far fewer means the module stopped with the database
    assert len(out.splitlines()) <= 50, out
    assert alice("logs", published).code != 0


def test_delete_database_yes_skips_confirmation(alice: User, published: str):
    result = alice("delete", "--yes", published)
    assert result.code == 0, result
    assert "Skipping confirmation due to --yes" in result.out
    assert alice("logs", published).code != 0
