"""Upstream's smoketest module ``auto-migration-add-columns``: two columns with defaults, and a
``client_disconnected`` reducer that logs. Persons are logged in the form of Rust's ``Debug``, as upstream's."""

from typing import Annotated

import spacetimedb
from spacetimedb import Index, ReducerContext, reducer, table, u16


@table
class Person:
    name: Annotated[str, Index.btree]
    age: u16 = 0
    mass: u16 = 19


@reducer
def add_person(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name, age=70, mass=180))


@reducer
def print_persons(ctx: ReducerContext, prefix: str) -> None:
    for p in ctx.db.person.iter():
        spacetimedb.log.info(f'{prefix}: Person {{ name: "{p.name}", age: {p.age}, mass: {p.mass} }}')


@reducer(lifecycle="client_disconnected")
def identity_disconnected(ctx: ReducerContext) -> None:
    spacetimedb.log.info("FIRST_UPDATE: client disconnected")
