"""Upstream's smoketest module ``auto-migration-add-table-initial``."""

import enum
from typing import Annotated

import spacetimedb
from spacetimedb import PrimaryKey, ReducerContext, reducer, table, type, u64


class PersonKind(enum.Enum):
    Student = 0


@table(public=True)
class Person:
    name: str
    kind: PersonKind


@reducer
def add_person(ctx: ReducerContext, name: str, kind: str) -> None:
    ctx.db.person.insert(Person(name=name, kind=PersonKind.Student))


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
    id: Annotated[u64, PrimaryKey]
