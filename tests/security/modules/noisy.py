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
    """Durable offset reports: tiny, valid, and each one handled by the server."""
    from spacetimedb.host.channel import Channel
    from spacetimedb.protocol import seam

    channel = next(thing for thing in gc.get_objects() if isinstance(thing, Channel))
    offset = 1 << 40
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        channel.send(*(seam.Durable(offset + n) for n in range(1000)))
        offset += 1000
    ctx.db.loot.insert(Loot(id=0, what="messages", data=str(offset - (1 << 40))))
