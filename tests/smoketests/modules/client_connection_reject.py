"""Upstream's smoketest module ``client-connection-reject``: every connection is refused."""

from spacetimedb import ReducerContext, reducer, table, u8


@table(public=True)
class AllU8s:
    number: u8


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    for number in range(256):
        ctx.db.all_u8s.insert(AllU8s(number=number))


@reducer(lifecycle="client_connected")
def identity_connected(ctx: ReducerContext) -> None:
    raise RuntimeError("Rejecting connection from client")


@reducer(lifecycle="client_disconnected")
def identity_disconnected(ctx: ReducerContext) -> None:
    raise RuntimeError("This should never be called, since we reject all connections!")
