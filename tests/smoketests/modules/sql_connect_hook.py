"""Upstream's smoketest module ``sql-connect-hook``: lifecycle reducers that log."""

import spacetimedb
from spacetimedb import ReducerContext, reducer, table


@table(public=True)
class Person:
    name: str


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.person.insert(Person(name="Alice"))


@reducer(lifecycle="client_connected")
def connected(ctx: ReducerContext) -> None:
    spacetimedb.log.info(f"sql_connect_hook: client_connected caller={ctx.sender}")


@reducer(lifecycle="client_disconnected")
def disconnected(ctx: ReducerContext) -> None:
    spacetimedb.log.info(f"sql_connect_hook: client_disconnected caller={ctx.sender}")
