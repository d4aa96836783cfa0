"""Upstream's smoketest module ``auto-migration-add-table-updated``: a variant added at the end of
``PersonKind``, AutoInc added to ``person_info.id``, and a new table ``book``."""

import enum
from typing import Annotated

import spacetimedb
from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, type, u64


class PersonKind(enum.Enum):
    Student = 0
    Professor = 1


@table(public=True)
class Person:
    name: str
    kind: PersonKind


@reducer
def add_person(ctx: ReducerContext, name: str, kind: str) -> None:
    ctx.db.person.insert(Person(name=name, kind=PersonKind[kind]))


@reducer
def print_persons(ctx: ReducerContext, prefix: str) -> None:
    for person in ctx.db.person.iter():
        spacetimedb.log.info(f"{prefix}: {person.name} - {person.kind.name}")


@type
class Vector2:
    x: float
    y: float


@table
class PointMass:
    mass: float
    position: Vector2


@table
class PersonInfo:
    id: Annotated[u64, PrimaryKey, AutoInc]


@table(public=True)
class Book:
    isbn: str


@reducer
def add_book(ctx: ReducerContext, isbn: str) -> None:
    ctx.db.book.insert(Book(isbn=isbn))


@reducer
def print_books(ctx: ReducerContext, prefix: str) -> None:
    for book in ctx.db.book.iter():
        spacetimedb.log.info(f"{prefix}: {book.isbn}")
