"""Upstream's smoketest module ``auto-migration-drop-event-table-before``."""

from spacetimedb import ReducerContext, reducer, table, u32


@table(public=True)
class Person:
    name: str


@table(public=True, event=True)
class SomeEvent:
    account_id: u32
    name: str


@reducer
def add_person(ctx: ReducerContext, name: str) -> None:
    ctx.db.person.insert(Person(name=name))


@reducer
def emit_event(ctx: ReducerContext) -> None:
    ctx.db.some_event.insert(SomeEvent(account_id=7, name="alpha"))
