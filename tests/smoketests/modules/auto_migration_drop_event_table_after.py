"""Upstream's smoketest module ``auto-migration-drop-event-table-after``: the event table dropped."""

from spacetimedb import ReducerContext, reducer, table


@table(public=True)
class Person:
    name: str


@reducer
def add_person(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name))
