"""Upstream's smoketest module ``permissions-lifecycle``: only lifecycle reducers."""

from spacetimedb import ReducerContext, reducer


@reducer(lifecycle="init")
def lifecycle_init(ctx: ReducerContext) -> None:
    pass


@reducer(lifecycle="client_connected")
def lifecycle_client_connected(ctx: ReducerContext) -> None:
    pass


@reducer(lifecycle="client_disconnected")
def lifecycle_client_disconnected(ctx: ReducerContext) -> None:
    pass
