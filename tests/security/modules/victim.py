"""The victim: an honest database that shares the server with the hostile ones.

Its secret lives in a private table that only its owner may read; `init` stores it from the line below, which
the tests replace with a fresh value per server (so nothing can guess it).
"""

from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64

SECRET = "__SECRET__"


@table
class Secret:
    id: Annotated[u64, PrimaryKey]
    value: str


@table(public=True)
class Note:
    id: Annotated[u64, PrimaryKey, AutoInc]
    text: str


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.secret.insert(Secret(id=1, value=SECRET))


@reducer
def write(ctx: ReducerContext, text: str) -> None:
    ctx.db.note.insert(Note(id=0, text=text))
