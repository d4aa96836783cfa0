"""Upstream's smoketest module ``permissions-private``: a private and a public table."""

from spacetimedb import ReducerContext, reducer, table, u8


@table
class Secret:
    answer: u8


@table(public=True)
class CommonKnowledge:
    thing: str


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.secret.insert(Secret(answer=42))


@reducer
def do_thing(ctx: ReducerContext, thing: str) -> None:
    ctx.db.secret.insert(Secret(answer=20))
    ctx.db.common_knowledge.insert(CommonKnowledge(thing=thing))
