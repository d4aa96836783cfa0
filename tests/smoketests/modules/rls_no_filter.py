"""Upstream's smoketest module ``rls-no-filter``: ``rls`` without its rule."""

from spacetimedb import Identity, ReducerContext, reducer, table


@table(public=True)
class Users:
    name: str
    identity: Identity


@reducer
def add_user(ctx: ReducerContext, name: str) -> None:
    ctx.db.users.insert(Users(name=name, identity=ctx.sender))
