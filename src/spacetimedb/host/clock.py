"""The clock a host thread arms around each call of module code, and the thread-level interruption it uses.

Compiled with the hot path (``spacetimedb.native``): every reducer call arms and disarms one. The watchdog
(``watchdog.py``) owns the thread that reads the clocks; this module only keeps their state. Imports the deadline
page (``protocol``) and the host's exceptions.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

from spacetimedb.protocol.deadline import DeadlineSlot

from .errors import CallCancelled, ReducerTimeout

T = TypeVar("T")

_get_ident: Final = threading.get_ident
_monotonic_ns: Final = time.monotonic_ns


class CallClock:
    """Armed by a host thread around each call; read by the watchdog.

    ``disarm`` and the watchdog's check-and-raise hold the same lock, and ``disarm`` cancels an exception the
    watchdog raised but Python has not delivered yet, so no ``ReducerTimeout`` escapes into host code after it.
    """

    def __init__(self, slot: DeadlineSlot | None = None, grace_seconds: float = 2.0) -> None:
        self.deadline = 0  # monotonic ns; 0 = no call in progress
        self.thread_id = 0
        # what the watchdog (or ``interrupt``) raised in the call in progress, which it may not have seen yet
        self.tripped: type[BaseException] | None = None
        self.lock = threading.Lock()
        self.slot = slot  # a worker's shared deadline page: its supervisor kills it past budget + grace
        self.grace_ns = int(grace_seconds * 1e9)
        self.token: object = None  # whom the call in progress is for (``interrupt`` names it)
        # the last budget armed, in seconds and in ns (it is the same every call)
        self._budget_seconds = 0.0
        self._budget_ns = 0

    def arm(self, budget_seconds: float, what: str = "module code", token: object = None) -> None:
        self.thread_id = _get_ident()
        self.tripped = None
        self.token = token
        if budget_seconds != self._budget_seconds:
            self._budget_ns = int(budget_seconds * 1e9)
            self._budget_seconds = budget_seconds
        deadline = self.deadline = _monotonic_ns() + self._budget_ns
        if self.slot is not None:
            self.slot.arm_until(deadline + self.grace_ns, what)

    def disarm(self) -> None:
        if self.slot is not None:
            self.slot.disarm()
        # ``with``, not ``acquire()`` and then ``try``: uncompiled, Python checks for a pending asynchronous
        # exception (the watchdog's) right after a call returns, which would leave the lock held; entering a
        # ``with`` is no such point
        with self.lock:
            self.deadline = 0
            self.token = None
            if self.tripped is not None:
                clear_pending(self.thread_id)
                self.tripped = None

    def hold(self) -> int:
        """Keep the call in progress from being interrupted until ``resume``, for a step that must not be cut in
        half (the commit of an SQL write, which runs under its query's budget); returns what ``resume`` takes.
        Raises what the watchdog or ``interrupt`` already sent, if they did: the step must not begin. Host
        thread only; without a call in progress, does nothing."""
        with self.lock:
            deadline = self.deadline
            self.deadline = 0
            sent, self.tripped = self.tripped, None
            if sent is not None:
                clear_pending(self.thread_id)
        if sent is not None:
            raise sent
        return deadline

    def resume(self, held: int) -> None:
        """End ``hold``: the watchdog watches the call again. If its budget ran out meanwhile, nothing is raised
        now (the step that was held is done, and what reports it must not be cut short): the next ``hold`` or
        ``checkpoint`` raises the timeout."""
        if held and _monotonic_ns() > held:
            self.tripped = ReducerTimeout  # (no asynchronous exception is pending: ``hold`` raises it)
        else:
            self.deadline = held

    def checkpoint(self) -> None:
        """Between two steps of a call: raise the timeout a held step's overrun left (see ``resume``), or one
        already sent."""
        self.resume(self.hold())

    def interrupt(self, token: object) -> bool:
        """From another thread: stop the call in progress with ``CallCancelled`` if it is ``token``'s."""
        with self.lock:
            if not self.deadline or self.token is None or self.token != token:
                return False
            self.tripped = CallCancelled
            raise_in_thread(self.thread_id, CallCancelled)
            return True

    def run(
        self, budget_seconds: float, fn: Callable[[], T], what: str = "module code", token: object = None
    ) -> T:
        """Run ``fn`` under the budget; raises ``ReducerTimeout`` if it ran out, ``CallCancelled`` if
        ``interrupt(token)`` stopped it."""
        try:
            self.arm(budget_seconds, what, token)
            try:
                return fn()
            finally:
                self.disarm()
        except (ReducerTimeout, CallCancelled):
            self.disarm()
            raise


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    """Have ``exc_type`` raised in the thread ``thread_id`` at its next bytecode boundary."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


def clear_pending(thread_id: int) -> None:
    """Cancel an exception ``raise_in_thread`` asked for that the thread has not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
