"""Upstream's smoketest module ``rls`` (and ``rls-with-filter``, the same module): each client sees only its own
``users`` row."""

from spacetimedb import Identity, ReducerContext, client_visibility_filter, reducer, table


@table(public=True)
class Users:
    name: str
    identity: Identity


USER_FILTER = client_visibility_filter("SELECT * FROM users WHERE identity = :sender")


@reducer
def add_user(ctx: ReducerContext, name: str) -> None:
    ctx.db.users.insert(Users(name=name, identity=ctx.sender))
