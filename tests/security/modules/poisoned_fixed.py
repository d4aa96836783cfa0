"""The fixed version of `poisoned`: the same tables and reducers, and top-level code that ignores the poison."""

from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


@reducer
def mark(ctx: ReducerContext, text: str) -> None:
    ctx.db.loot.insert(Loot(id=0, what="mark", data=text))


@reducer
def poison(ctx: ReducerContext) -> None:
    raise ValueError("this version cannot be poisoned")
