"""The module most end-to-end CLI tests publish: a public and a private table, and reducers that succeed,
fail and log."""

from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, i32, log, reducer, table, u64


@table(public=True)
class Note:
    id: Annotated[u64, PrimaryKey, AutoInc]
    text: str
    score: i32


@table
class Secret:
    id: Annotated[u64, PrimaryKey]
    value: str


@reducer
def add_note(ctx: ReducerContext, text: str, score: i32) -> None:
    ctx.db.note.insert(Note(id=0, text=text, score=score))
    log.info(f"added note {text}")


@reducer
def fail(ctx: ReducerContext, reason: str) -> None:
    raise ValueError(reason)


@reducer
def shout(ctx: ReducerContext, message: str) -> None:
    log.warn(message)
