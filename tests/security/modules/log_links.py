"""A hostile module that turns its own log files into symbolic links to files elsewhere, then stops its worker.

The links are made inside its own database directory, which the sandbox lets it write; what they point to it
cannot open itself. The server, however, reads and writes the log of a database whose worker is not running
(`GET /logs`, the record of why the worker stopped), outside any sandbox.
"""

import os
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


@reducer
def link_log_file(ctx: ReducerContext, name: str, target: str) -> None:
    """Make ``module_logs/<name>`` a link to ``target`` (relative targets start from ``module_logs``)."""
    path = os.path.join("module_logs", name)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)
    ctx.db.loot.insert(Loot(id=0, what=path, data=os.readlink(path)))


@reducer
def exit_process(ctx: ReducerContext) -> None:
    os._exit(1)
