"""Upstream's cluster/confirmed_reads.rs: `subscribe --confirmed true` and `sql --confirmed true` work and see
what plain ones see (upstream notes it cannot observe the difference without controlling the server either); the
module confirmed-reads rewritten in Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import Smoke, Subscriptions, publish, subscriptions

__all__ = ["subscriptions"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CONFIRMED_READS = """
    from spacetimedb import ReducerContext, reducer, table


    @table(name="person", public=True)
    class Person:
        name: str


    @reducer
    def add(ctx: ReducerContext, name: str) -> None:
        ctx.db.person.insert(Person(name=name))
"""


@pytest.fixture
def smoke(alice: User, db_name: str, python_module: Callable[[str], Path]) -> Smoke:
    return publish(alice, db_name, python_module(CONFIRMED_READS))


def test_confirmed_reads_receive_updates(smoke: Smoke, subscriptions: Subscriptions) -> None:
    """Upstream test_confirmed_reads_receive_updates: a confirmed subscription receives the reducer's insert and
    the one a confirmed SQL statement made."""
    subscription = subscriptions(smoke, "SELECT * FROM person", n=2, confirmed=True)
    smoke.call("add", "Horst")
    smoke.sql_confirmed("INSERT INTO person (name) VALUES ('Egon')")
    assert subscription.collect() == [
        {"person": {"deletes": [], "inserts": [{"name": "Horst"}]}},
        {"person": {"deletes": [], "inserts": [{"name": "Egon"}]}},
    ]


def test_sql_with_confirmed_reads_receives_result(smoke: Smoke) -> None:
    """Upstream test_sql_with_confirmed_reads_receives_result: a confirmed insert, then a confirmed query that
    sees it."""
    smoke.sql_confirmed("INSERT INTO person (name) VALUES ('Horst')")
    assert "Horst" in smoke.sql_confirmed("SELECT * FROM person")
