"""Upstream's standalone/restart.rs: data, SQL, connected clients and sequences across a server restart (the server
stopped and started again on the same data directory and port), with the modules restart-person,
restart-connected-client and add-remove-index(-indexed) rewritten in Python. Each test has a server of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import (
    ADD_AND_SAY_HELLO,
    RestartableServer,
    Smoke,
    Subscriptions,
    publish,
    subscriptions,
)

__all__ = ["subscriptions"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RESTART_PERSON = (
    """
    from typing import Annotated

    import spacetimedb
    from spacetimedb import AutoInc, Index, PrimaryKey, ReducerContext, reducer, table, u32


    @table(name="person", indexes=[Index.btree("name", name="name_idx")])
    class Person:
        id: Annotated[u32, PrimaryKey, AutoInc]
        name: str
"""
    + ADD_AND_SAY_HELLO
)

RESTART_CONNECTED_CLIENT = """
    import spacetimedb
    from spacetimedb import ConnectionId, Identity, ReducerContext, reducer, table


    @table(name="connected_client")
    class ConnectedClient:
        identity: Identity
        connection_id: ConnectionId


    @reducer(lifecycle="client_connected")
    def on_connect(ctx: ReducerContext) -> None:
        assert ctx.connection_id is not None, "sender connection id unset"
        ctx.db.connected_client.insert(ConnectedClient(identity=ctx.sender, connection_id=ctx.connection_id))


    @reducer(lifecycle="client_disconnected")
    def on_disconnect(ctx: ReducerContext) -> None:
        assert ctx.connection_id is not None, "sender connection id unset"
        for client in ctx.db.connected_client.iter():
            if client.identity == ctx.sender and client.connection_id == ctx.connection_id:
                ctx.db.connected_client.delete(client)
                return


    @reducer
    def print_num_connected(ctx: ReducerContext) -> None:
        spacetimedb.log.info(f"CONNECTED CLIENTS: {ctx.db.connected_client.count()}")
"""

# add-remove-index: two tables of 1,000 ids; {index} makes `id` indexed (add-remove-index-indexed, which also has
# the `add` reducer) or not.
ADD_REMOVE_INDEX = """
    from typing import Annotated

    from spacetimedb import Index, ReducerContext, reducer, table, u64


    @table(name="t1")
    class T1:
        id: {id_type}


    @table(name="t2")
    class T2:
        id: {id_type}


    @reducer(lifecycle="init")
    def init(ctx: ReducerContext) -> None:
        for id in range(1_000):
            ctx.db.t1.insert(T1(id=id))
            ctx.db.t2.insert(T2(id=id))
"""
UNINDEXED = ADD_REMOVE_INDEX.format(id_type="u64")
INDEXED = (
    ADD_REMOVE_INDEX.format(id_type="Annotated[u64, Index.btree]")
    + """

    @reducer
    def add(ctx: ReducerContext) -> None:
        ctx.db.t1.insert(T1(id=1_001))
        ctx.db.t2.insert(T2(id=1_001))
"""
)

JOIN_QUERY = "select t1.* from t1 join t2 on t1.id = t2.id where t2.id = 1001"


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableServer]:
    with RestartableServer(tmp_path / "data") as server:
        yield server


@pytest.fixture
def owner(tmp_path: Path, restartable: RestartableServer) -> User:
    return User(tmp_path / "owner", restartable.url)


@pytest.fixture
def deploy(owner: User, db_name: str, python_module: Callable[[str], Path]) -> Callable[[str], Smoke]:
    return lambda source: publish(owner, db_name, python_module(source), "-y")


def test_restart_module(deploy: Callable[[str], Smoke], restartable: RestartableServer) -> None:
    """Upstream test_restart_module: a row written (and confirmed durable) before the restart is there after it,
    next to rows written after it."""
    smoke = deploy(RESTART_PERSON)
    smoke.call("add", "Robert")
    assert "Robert" in smoke.sql_confirmed("SELECT * FROM person WHERE name = 'Robert'")
    restartable.restart()
    smoke.call("add", "Julie")
    smoke.call("add", "Samantha")
    smoke.call("say_hello")
    smoke.assert_greeted_everyone()


def test_restart_sql(deploy: Callable[[str], Smoke], restartable: RestartableServer) -> None:
    """Upstream test_restart_sql: SQL after a restart finds the rows (and the ids the sequence gave them)."""
    smoke = deploy(RESTART_PERSON)
    for name in ("Robert", "Julie", "Samantha"):
        smoke.call("add", name)
    assert "Samantha" in smoke.sql_confirmed("SELECT * FROM person WHERE name = 'Samantha'")
    restartable.restart()
    assert "Samantha" in smoke.sql("SELECT name FROM person WHERE id = 3")


def test_restart_auto_disconnect(
    deploy: Callable[[str], Smoke], restartable: RestartableServer, subscriptions: Subscriptions
) -> None:
    """Upstream test_restart_auto_disconnect: clients connected when the server stopped are disconnected
    (`client_disconnected` runs for them) when it starts again."""
    smoke = deploy(RESTART_CONNECTED_CLIENT)
    subscriptions(smoke, "SELECT * FROM connected_client", n=2)
    subscriptions(smoke, "SELECT * FROM connected_client", n=2)
    smoke.call("print_num_connected")
    assert any("CONNECTED CLIENTS: 3" in line for line in smoke.logs(10))  # two subscribers and the call
    restartable.restart()
    smoke.call("print_num_connected")
    assert any("CONNECTED CLIENTS: 1" in line for line in smoke.logs(10))


def test_add_remove_index_after_restart(
    deploy: Callable[[str], Smoke], restartable: RestartableServer, subscriptions: Subscriptions
) -> None:
    """Upstream test_add_remove_index_after_restart: adding and removing indexes after restarts (sequences of
    system objects must not hand out ids again): a join needs its indexes to be subscribed to."""
    smoke = deploy(UNINDEXED)
    assert smoke.subscribe_once(JOIN_QUERY).code != 0  # an unindexed join is refused
    restartable.restart()

    deploy(INDEXED)
    accepted = smoke.subscribe_once(JOIN_QUERY)
    assert accepted.code == 0, accepted
    subscription = subscriptions(smoke, JOIN_QUERY, n=1)
    assert smoke.user("call", "--anonymous", smoke.database, "add").code == 0
    assert len(subscription.collect()) == 1
    restartable.restart()

    deploy(UNINDEXED)
    assert smoke.subscribe_once(JOIN_QUERY).code != 0
