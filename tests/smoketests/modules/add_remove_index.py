"""Upstream's smoketest module ``add-remove-index``: two tables without indexes (upstream's ``t1`` / ``t2`` have the
canonical names ``t_1`` / ``t_2``)."""

from spacetimedb import ReducerContext, reducer, table, u64


@table(name="t_1", accessor="t1")
class T1:
    id: u64


@table(name="t_2", accessor="t2")
class T2:
    id: u64


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    for id in range(1000):
        ctx.db.t1.insert(T1(id=id))
        ctx.db.t2.insert(T2(id=id))
