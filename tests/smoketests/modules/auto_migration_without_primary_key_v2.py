"""Upstream's smoketest module ``auto-migration-without-primary-key-v2``: one more reducer."""

from spacetimedb import ReducerContext, reducer, table


@table(public=True)
class Person:
    name: str


@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name))


@reducer
def noop(ctx: ReducerContext) -> None:
    pass
