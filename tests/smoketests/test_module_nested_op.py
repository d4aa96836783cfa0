"""Upstream's cluster/module_nested_op.rs: a reducer that looks rows up by a unique column while iterating
another table, with the module module-nested-op rewritten in Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import publish

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MODULE_NESTED_OP = """
    from typing import Annotated

    import spacetimedb
    from spacetimedb import ReducerContext, Unique, i32, reducer, table


    @table(name="account")
    class Account:
        name: str
        id: Annotated[i32, Unique]


    @table(name="friends")
    class Friends:
        friend_1: i32
        friend_2: i32


    @reducer
    def create_account(ctx: ReducerContext, account_id: i32, name: str) -> None:
        ctx.db.account.insert(Account(id=account_id, name=name))


    @reducer
    def add_friend(ctx: ReducerContext, my_id: i32, their_id: i32) -> None:
        for account in ctx.db.account.iter():  # make sure the friend exists
            if account.id == their_id:
                ctx.db.friends.insert(Friends(friend_1=my_id, friend_2=their_id))
                return


    @reducer
    def say_friends(ctx: ReducerContext) -> None:
        for friendship in ctx.db.friends.iter():
            friend1 = ctx.db.account.id.find(friendship.friend_1)
            friend2 = ctx.db.account.id.find(friendship.friend_2)
            spacetimedb.log.info(f"{friend1.name} is friends with {friend2.name}")
"""


def test_module_nested_op(alice: User, db_name: str, python_module: Callable[[str], Path]) -> None:
    """Upstream test_module_nested_op: accounts, a friendship between them, and the reducer that names both."""
    smoke = publish(alice, db_name, python_module(MODULE_NESTED_OP))
    smoke.call("create_account", "1", '"House"')
    smoke.call("create_account", "2", '"Wilson"')
    smoke.call("add_friend", "1", "2")
    smoke.call("say_friends")
    assert any("House is friends with Wilson" in message for message in smoke.logs(2))
