"""Upstream's smoketest module ``noop``."""

from spacetimedb import ReducerContext, reducer


@reducer
def noop(ctx: ReducerContext) -> None:
    pass
