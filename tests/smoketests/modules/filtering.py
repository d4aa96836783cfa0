"""Upstream's smoketest module ``filtering``: finding rows by unique and non-unique indexes, and by scanning.

Upstream's ``*_read_only`` reducers look through ``ctx.as_read_only()``; a Python ``ReducerContext`` has no
read-only view, so they read ``ctx.db`` the same way (without writing)."""

from typing import Annotated

import spacetimedb
from spacetimedb import (
    Identity,
    Index,
    ReducerContext,
    Unique,
    UniqueConstraintViolation,
    i32,
    reducer,
    table,
    u64,
)


@table
class Person:
    id: Annotated[i32, Unique]
    name: str
    nick: Annotated[str, Unique]


@reducer
def insert_person(ctx: ReducerContext, id: i32, name: str, nick: str) -> None:
    ctx.db.person.insert(Person(id=id, name=name, nick=nick))


@reducer
def insert_person_twice(ctx: ReducerContext, id: i32, name: str, nick: str) -> None:
    ctx.db.person.insert(Person(id=id, name=name, nick=nick))
    try:
        ctx.db.person.insert(Person(id=id, name=f"{name}2", nick=nick))
    except UniqueConstraintViolation:
        spacetimedb.log.info(f"UNIQUE CONSTRAINT VIOLATION ERROR: id = {id}, nick = {nick}")


@reducer
def delete_person(ctx: ReducerContext, id: i32) -> None:
    ctx.db.person.id.delete(id)


def _find_person(ctx: ReducerContext, id: int) -> None:
    person = ctx.db.person.id.find(id)
    if person is not None:
        spacetimedb.log.info(f"UNIQUE FOUND: id {id}: {person.name}")
    else:
        spacetimedb.log.info(f"UNIQUE NOT FOUND: id {id}")


@reducer
def find_person(ctx: ReducerContext, id: i32) -> None:
    _find_person(ctx, id)


@reducer
def find_person_read_only(ctx: ReducerContext, id: i32) -> None:
    _find_person(ctx, id)


@reducer
def find_person_by_name(ctx: ReducerContext, name: str) -> None:
    for person in ctx.db.person.iter():
        if person.name == name:
            spacetimedb.log.info(f"UNIQUE FOUND: id {person.id}: {person.name} aka {person.nick}")


def _find_person_by_nick(ctx: ReducerContext, nick: str) -> None:
    person = ctx.db.person.nick.find(nick)
    if person is not None:
        spacetimedb.log.info(f"UNIQUE FOUND: id {person.id}: {person.nick}")
    else:
        spacetimedb.log.info(f"UNIQUE NOT FOUND: nick {nick}")


@reducer
def find_person_by_nick(ctx: ReducerContext, nick: str) -> None:
    _find_person_by_nick(ctx, nick)


@reducer
def find_person_by_nick_read_only(ctx: ReducerContext, nick: str) -> None:
    _find_person_by_nick(ctx, nick)


@table
class NonuniquePerson:
    id: Annotated[i32, Index.btree]
    name: str
    is_human: bool


@reducer
def insert_nonunique_person(ctx: ReducerContext, id: i32, name: str, is_human: bool) -> None:
    ctx.db.nonunique_person.insert(NonuniquePerson(id=id, name=name, is_human=is_human))


def _find_nonunique_person(ctx: ReducerContext, id: int) -> None:
    for person in ctx.db.nonunique_person.id.filter(id):
        spacetimedb.log.info(f"NONUNIQUE FOUND: id {id}: {person.name}")


@reducer
def find_nonunique_person(ctx: ReducerContext, id: i32) -> None:
    _find_nonunique_person(ctx, id)


@reducer
def find_nonunique_person_read_only(ctx: ReducerContext, id: i32) -> None:
    _find_nonunique_person(ctx, id)


@reducer
def find_nonunique_humans(ctx: ReducerContext) -> None:
    for person in ctx.db.nonunique_person.iter():
        if person.is_human:
            spacetimedb.log.info(f"HUMAN FOUND: id {person.id}: {person.name}")


@reducer
def find_nonunique_non_humans(ctx: ReducerContext) -> None:
    for person in ctx.db.nonunique_person.iter():
        if not person.is_human:
            spacetimedb.log.info(f"NON-HUMAN FOUND: id {person.id}: {person.name}")


@table
class IdentifiedPerson:
    identity: Annotated[Identity, Unique]
    name: str


@reducer
def insert_identified_person(ctx: ReducerContext, id_number: u64, name: str) -> None:
    ctx.db.identified_person.insert(IdentifiedPerson(identity=Identity(id_number), name=name))


@reducer
def find_identified_person(ctx: ReducerContext, id_number: u64) -> None:
    person = ctx.db.identified_person.identity.find(Identity(id_number))
    spacetimedb.log.info(f"IDENTIFIED FOUND: {person.name}" if person is not None else "IDENTIFIED NOT FOUND")


@table
class IndexedPerson:
    id: Annotated[i32, Unique]
    given_name: str
    surname: Annotated[str, Index.btree]


@reducer
def insert_indexed_person(ctx: ReducerContext, id: i32, given_name: str, surname: str) -> None:
    ctx.db.indexed_person.insert(IndexedPerson(id=id, given_name=given_name, surname=surname))


@reducer
def delete_indexed_person(ctx: ReducerContext, id: i32) -> None:
    ctx.db.indexed_person.id.delete(id)


def _find_indexed_people(ctx: ReducerContext, surname: str) -> None:
    for person in ctx.db.indexed_person.surname.filter(surname):
        spacetimedb.log.info(f"INDEXED FOUND: id {person.id}: {person.surname}, {person.given_name}")


@reducer
def find_indexed_people(ctx: ReducerContext, surname: str) -> None:
    _find_indexed_people(ctx, surname)


@reducer
def find_indexed_people_read_only(ctx: ReducerContext, surname: str) -> None:
    _find_indexed_people(ctx, surname)
