"""The durable offset of one database, as the server knows it from its worker's ``Durable`` messages."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class DurableOffset:
    """The highest offset known durable (-1: none yet), and who waits for one (event loop only).

    A hostile worker could report anything; the value only ever grows, and it only gates what that worker's own
    clients are sent."""

    def __init__(self, initial: int | None, on_advance: Callable[[int], None] | None = None) -> None:
        self.value = -1 if initial is None else initial
        self._on_advance = on_advance
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._failure: str | None = None
        self._disk_full = False

    def advance(self, offset: int) -> None:
        if offset <= self.value:
            return
        self.value = offset
        waiters = self._waiters
        while waiters and waiters[0][0] <= offset:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)
        if self._on_advance is not None:
            self._on_advance(offset)

    async def wait(self, offset: int | None, timeout: float = 30.0) -> None:
        """Return once ``offset`` is durable (at once for None: a transaction that changed nothing)."""
        if offset is None or offset <= self.value:
            return
        if self._failure is not None:
            raise DurabilityLost(self._failure, self._disk_full)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (offset, next(self._seq), future))
        await asyncio.wait_for(future, timeout)

    def fail(self, reason: str, disk_full: bool = False) -> None:
        """The worker is gone: nobody waiting will see their offset become durable through it."""
        self._failure = reason
        self._disk_full = disk_full
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(DurabilityLost(reason, disk_full))
        self._waiters.clear()


class DurabilityLost(RuntimeError):
    """The worker died before the offset someone waited for was reported durable (``disk_full``: because
    its disk was full)."""

    def __init__(self, reason: str, disk_full: bool = False) -> None:
        super().__init__(reason)
        self.disk_full = disk_full
