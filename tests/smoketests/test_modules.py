"""Upstream's cluster/modules.rs: publishing, updating (automatic and refused) and hot-swapping a module, with
the modules modules-basic, modules-breaking, modules-add-table, upload-module-2, hotswap-basic and hotswap-updated
rewritten in Python."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import ADD_AND_SAY_HELLO, Smoke, Subscriptions, publish, subscriptions

__all__ = ["subscriptions"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PERSON = """
    from typing import Annotated

    import spacetimedb
    from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64, u8


    @table(name="person")
    class Person:
        id: Annotated[u64, PrimaryKey, AutoInc]
        name: str
"""

MODULES_BASIC = PERSON + ADD_AND_SAY_HELLO

# modules-breaking: `person` gains a column without a default, which no automatic migration can fill in.
MODULES_BREAKING = PERSON + "        age: u8\n"

MODULES_ADD_TABLE = (
    PERSON
    + """

    @table(name="pets")
    class Pet:
        species: str


    @reducer
    def are_we_updated_yet(ctx: ReducerContext) -> None:
        spacetimedb.log.info("MODULE UPDATED")
"""
)

UPLOAD_MODULE_2 = """
    from typing import Annotated

    import spacetimedb
    from spacetimedb import AutoInc, PrimaryKey, ReducerContext, ScheduleAt, TimeDuration, Timestamp, reducer, table, u64


    @table(name="scheduled_message", public=True, scheduled="my_repeating_reducer")
    class ScheduledMessage:
        scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
        scheduled_at: ScheduleAt
        prev: Timestamp


    @reducer(lifecycle="init")
    def init(ctx: ReducerContext) -> None:
        ctx.db.scheduled_message.insert(
            ScheduledMessage(scheduled_id=0, scheduled_at=ScheduleAt.interval(TimeDuration(100_000)), prev=ctx.timestamp)
        )


    @reducer
    def my_repeating_reducer(ctx: ReducerContext, arg: ScheduledMessage) -> None:
        spacetimedb.log.info(f"Invoked: ts={ctx.timestamp.micros}, delta={ctx.timestamp.micros - arg.prev.micros}us")
"""

HOTSWAP_BASIC = """
    from typing import Annotated

    from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


    @table(name="person", public=True)
    class Person:
        id: Annotated[u64, PrimaryKey, AutoInc]
        name: str


    @reducer
    def add_person(ctx: ReducerContext, name: str) -> None:
        ctx.db.person.insert(Person(id=0, name=name))
"""

HOTSWAP_UPDATED = (
    HOTSWAP_BASIC
    + """

    @table(name="pet", public=True)
    class Pet:
        species: Annotated[str, PrimaryKey]


    @reducer
    def add_pet(ctx: ReducerContext, species: str) -> None:
        ctx.db.pet.insert(Pet(species=species))
"""
)


@pytest.fixture
def deploy(alice: User, db_name: str, python_module: Callable[[str], Path]) -> Callable[[str], Smoke]:
    """Publish a module source to this test's database, first time or update."""
    return lambda source: publish(alice, db_name, python_module(source))


def add_three_and_say_hello(smoke: Smoke) -> None:
    for name in ("Robert", "Julie", "Samantha"):
        smoke.call("add", name)
    smoke.call("say_hello")
    smoke.assert_greeted_everyone()


def test_module_update(
    alice: User, db_name: str, deploy: Callable[[str], Smoke], python_module: Callable[[str], Path]
) -> None:
    """Upstream test_module_update: republishing the same module is fine; a change that needs a manual migration
    (a new column without a default) is refused and the old module keeps running; adding a table is automatic."""
    smoke = deploy(MODULES_BASIC)
    add_three_and_say_hello(smoke)
    deploy(MODULES_BASIC)

    refused = alice("publish", db_name, "-p", str(python_module(MODULES_BREAKING)), "-y")
    assert refused.code != 0, refused
    assert "manual migration" in refused.err or "breaking" in refused.err, refused.err
    smoke.call("say_hello")

    deploy(MODULES_ADD_TABLE)
    smoke.call("are_we_updated_yet")
    assert any("MODULE UPDATED" in line for line in smoke.logs(2))


def test_upload_module(deploy: Callable[[str], Smoke]) -> None:
    """Upstream test_upload_module: publish, call reducers, find what they logged."""
    add_three_and_say_hello(deploy(MODULES_BASIC))


def test_upload_module_2(deploy: Callable[[str], Smoke]) -> None:
    """Upstream test_upload_module_2: a repeating schedule set up in `init` keeps running (upstream waits 2 s and
    then 4 s more; 100 ms intervals show the same in 1 s each)."""
    smoke = deploy(UPLOAD_MODULE_2)
    time.sleep(1)
    before = sum("Invoked" in line for line in smoke.logs(100))
    time.sleep(1)
    after = sum("Invoked" in line for line in smoke.logs(100))
    assert before < after


def test_hotswap_module(deploy: Callable[[str], Smoke], subscriptions: Subscriptions) -> None:
    """Upstream test_hotswap_module: a `SELECT * FROM *` subscription survives an automatic module update (adding
    a table) and keeps receiving the tables it covered before it."""
    smoke = deploy(HOTSWAP_BASIC)
    subscription = subscriptions(smoke, "SELECT * FROM *", n=2)
    smoke.call("add_person", "Horst")
    deploy(HOTSWAP_UPDATED)
    smoke.call("add_pet", "Turtle")
    smoke.call("add_person", "Cindy")
    assert subscription.collect() == [
        {"person": {"deletes": [], "inserts": [{"id": 1, "name": "Horst"}]}},
        {"person": {"deletes": [], "inserts": [{"id": 2, "name": "Cindy"}]}},
    ]
