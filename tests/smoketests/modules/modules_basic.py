"""Upstream's smoketest module ``modules-basic``."""

from typing import Annotated

import spacetimedb
from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


@table
class Person:
    id: Annotated[u64, PrimaryKey, AutoInc]
    name: str


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(id=0, name=name))


@reducer
def say_hello(ctx: ReducerContext) -> None:
    for person in ctx.db.person.iter():
        spacetimedb.log.info(f"Hello, {person.name}!")
    spacetimedb.log.info("Hello, World!")
