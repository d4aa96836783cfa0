"""``Pending``: the answer to a client's request (a reducer call, a one-off query, a procedure call)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator
from typing import Any, TypeVar

from .events import ReducerEvent

T = TypeVar("T")


class Pending(concurrent.futures.Future[T]):
    """The answer to a request (a reducer call, a one-off query): ``.result(timeout)`` from a thread, or
    ``await`` it in asyncio. It completes when the connection processes the reply, so with ``frame_tick``
    only after a tick -- use callbacks there rather than blocking on it."""

    def __await__(self) -> Generator[Any, None, T]:
        return asyncio.wrap_future(self).__await__()

    def _complete(self, result: Any = None, error: BaseException | None = None) -> None:
        """Resolve, unless the application cancelled it meanwhile (then nobody wants the answer)."""
        if self.done():
            return
        if error is None:
            self.set_result(result)
        else:
            self.set_exception(error)


ReducerCall = Pending[ReducerEvent]
