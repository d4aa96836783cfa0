"""Upstream's smoketest module ``add-remove-index-indexed``: the same tables with an index on ``id``, and ``add``."""

from typing import Annotated

from spacetimedb import Index, ReducerContext, reducer, table, u64


@table(name="t_1", accessor="t1")
class T1:
    id: Annotated[u64, Index.btree]


@table(name="t_2", accessor="t2")
class T2:
    id: Annotated[u64, Index.btree]


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    for id in range(1000):
        ctx.db.t1.insert(T1(id=id))
        ctx.db.t2.insert(T2(id=id))


@reducer
def add(ctx: ReducerContext) -> None:
    ctx.db.t1.insert(T1(id=1001))
    ctx.db.t2.insert(T2(id=1001))
