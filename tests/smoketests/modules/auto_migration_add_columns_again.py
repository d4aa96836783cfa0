"""Upstream's smoketest module ``auto-migration-add-columns-again``: one more column with a default, the index
and the ``client_disconnected`` reducer gone."""

import spacetimedb
from spacetimedb import ReducerContext, reducer, table, u16, u32


@table
class Person:
    name: str
    age: u16
    mass: u16 = 19
    height: u32 = 160


@reducer
def add_person(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name, age=70, mass=180, height=72))


@reducer
def print_persons(ctx: ReducerContext, prefix: str) -> None:
    for p in ctx.db.person.iter():
        spacetimedb.log.info(
            f'{prefix}: Person {{ name: "{p.name}", age: {p.age}, mass: {p.mass}, height: {p.height} }}'
        )
