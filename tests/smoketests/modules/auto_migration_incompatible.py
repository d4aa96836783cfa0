"""Upstream's smoketest module ``auto-migration-incompatible``: adds a column without a default."""

import spacetimedb
from spacetimedb import ReducerContext, reducer, table, u128


@table
class Person:
    name: str
    age: u128


@reducer
def add_person(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name, age=70))


@reducer
def print_persons(ctx: ReducerContext, prefix: str) -> None:
    for person in ctx.db.person.iter():
        spacetimedb.log.info(f"{prefix}: {person.name}")
