"""A hostile module that keeps the server busy for as long as its time budget allows: by writing to its stderr
(which the server drains), and by sending the server valid messages on its channel (which the server decodes
and handles on its one event loop, the loop that serves every database)."""

import gc
import os
import time
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, f64, reducer, table, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


@reducer
def flood_stderr(ctx: ReducerContext, seconds: f64) -> None:
    chunk = (b"x" * 400 + b"\n") * 160
    written = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        written += os.write(2, chunk)
    ctx.db.loot.insert(Loot(id=0, what="stderr bytes", data=str(written)))


@reducer
def flood_channel(ctx: ReducerContext, seconds: f64) -> None:
    """Empty batches of results: tiny, valid (a worker may send one at any time), and each one decoded and
    handled by the server."""
    from spacetimedb.host.channel import Channel
    from spacetimedb.protocol import seam

    channel = next(thing for thing in gc.get_objects() if isinstance(thing, Channel))
    batch = [seam.Deliveries((), ())] * 1000
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        channel.send(*batch)
        sent += len(batch)
    ctx.db.loot.insert(Loot(id=0, what="messages", data=str(sent)))
