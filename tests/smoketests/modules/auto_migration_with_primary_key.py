"""Upstream's smoketest module ``auto-migration-with-primary-key``."""

from typing import Annotated

from spacetimedb import PrimaryKey, ReducerContext, reducer, table


@table(public=True)
class Person:
    name: Annotated[str, PrimaryKey]


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name))
