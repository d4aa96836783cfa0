"""A hostile module whose reducers crash, exhaust or hang their worker in every way Python allows.

`mark` commits a row before an attack, so the test can check that nothing acknowledged is lost when the worker
dies; `whoami` reports the worker's pid, so the test can tell a restarted worker from the same one.
"""

import ctypes
import gc
import os
import re
import signal
import stat
import sys
import time
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


def keep(ctx: ReducerContext, what: str, data: str) -> None:
    ctx.db.loot.insert(Loot(id=0, what=what, data=data))


@reducer
def mark(ctx: ReducerContext, text: str) -> None:
    keep(ctx, "mark", text)


@reducer
def whoami(ctx: ReducerContext) -> None:
    keep(ctx, "pid", str(os.getpid()))


@reducer
def exit_process(ctx: ReducerContext) -> None:
    os._exit(0)


@reducer
def raise_system_exit(ctx: ReducerContext) -> None:
    sys.exit()


@reducer
def segfault(ctx: ReducerContext) -> None:
    ctypes.string_at(0)


@reducer
def kill_itself(ctx: ReducerContext) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@reducer
def allocate_3_gib(ctx: ReducerContext) -> None:
    keep(ctx, "allocated", str(len(bytearray(3 << 30))))


@reducer
def backtrack(ctx: ReducerContext) -> None:
    """Catastrophic backtracking: one C call that would take longer than the universe has left."""
    keep(ctx, "matched", repr(re.match(r"(a+)+$", "a" * 40 + "b")))


@reducer
def sleep_a_minute(ctx: ReducerContext) -> None:
    time.sleep(60)


@reducer
def spin(ctx: ReducerContext) -> None:
    while True:
        pass


@reducer
def spin_swallowing_timeouts(ctx: ReducerContext) -> None:
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass


@reducer
def garble_channel(ctx: ReducerContext) -> None:
    """Write garbage into every socket the worker inherited: its channel to the server."""
    garbage = b"\xff" * 64
    for fd in range(3, 256):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, garbage)
        except OSError:
            pass


@reducer
def disarm_deadline_and_spin(ctx: ReducerContext, seconds: float) -> None:
    """Clear the deadlines the worker arms for its supervisor and its watchdog (both live in this process's
    memory), then spin for ``seconds``."""
    from spacetimedb.host.watchdog import CallClock
    from spacetimedb.protocol.deadline import DeadlineSlot

    for thing in gc.get_objects():
        if isinstance(thing, DeadlineSlot):
            thing.disarm()
        elif isinstance(thing, CallClock):
            thing.deadline = 0  # "no call in progress"
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        pass
