"""A module that crashes at every launch once it has poisoned itself.

Its top-level code exits as soon as a file named `poison` exists in the current directory (a worker's current
directory is its database directory, so the file outlives the worker); the `poison` reducer creates it and
exits. From then on every launch of the database fails, until a fixed module is published over it.
"""

import os
import sys
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64

if os.path.exists("poison"):
    print("poisoned: this module refuses to start", file=sys.stderr, flush=True)
    os._exit(1)


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


@reducer
def mark(ctx: ReducerContext, text: str) -> None:
    ctx.db.loot.insert(Loot(id=0, what="mark", data=text))


@reducer
def poison(ctx: ReducerContext) -> None:
    open("poison", "w").close()
    os._exit(1)
