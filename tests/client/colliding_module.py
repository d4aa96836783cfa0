"""A module whose names collide with the attributes of the client SDKs' table handles.

The columns are named ``name``, ``count``, ``iter``, ``insert``, ``delete`` and ``index``. The indexes' accessors
``name`` (the primary key), ``index``, ``schema`` and ``on_insert`` collide with what a Python ``TableHandle``
already has, so the bindings must expose them under other names. (A Python module may not give an index the
accessor ``count``, ``iter``, ``insert`` or ``delete``, which would hide ``ctx.db.player.count()``; modules in other
languages may, which the codegen tests cover with a module definition.)
"""

from typing import Annotated

from spacetimedb import Index, PrimaryKey, ReducerContext, reducer, table, u32


@table(
    public=True,
    indexes=[Index.btree("count", "iter", name="schema"), Index.btree("insert", "delete", name="on_insert")],
)
class Player:
    name: Annotated[str, PrimaryKey]
    count: u32
    iter: u32
    insert: u32
    delete: u32
    index: Annotated[u32, Index.btree]


@reducer
def add_player(ctx: ReducerContext, name: str, number: u32) -> None:
    ctx.db.player.insert(
        Player(name=name, count=number, iter=number + 1, insert=number, delete=number + 1, index=number)
    )
