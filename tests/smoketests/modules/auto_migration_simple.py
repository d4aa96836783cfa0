"""Upstream's smoketest module ``auto-migration-simple``."""

import spacetimedb
from spacetimedb import ReducerContext, reducer, table


@table
class Person:
    name: str


@reducer
def add_person(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name))


@reducer
def print_persons(ctx: ReducerContext, prefix: str) -> None:
    for person in ctx.db.person.iter():
        spacetimedb.log.info(f"{prefix}: {person.name}")
