"""Stops reducers that run past their time budget.

Why this way: ``sys.settrace`` would slow every reducer down; instead one watchdog thread per process watches
the deadlines that host threads arm before each call (two attribute writes, no syscall), and when one passes it
raises ``ReducerTimeout`` in that thread with ``PyThreadState_SetAsyncExc``. CPython delivers such an exception
at the next bytecode boundary, so a reducer stuck inside one long C call (a huge regex, ``time.sleep``) is
stopped only when that call returns; the watchdog re-raises every poll until the call has ended, so a reducer
that catches the first one cannot keep running. In a worker process the clock also arms the shared deadline
slot, and the supervisor kills the worker if the call is still running at budget + grace: that stops what an
exception cannot (a long C call, module code that swallows ``BaseException``). ``ReducerTimeout`` derives from ``BaseException`` so that
``except Exception`` in module code does not swallow it.
"""

from __future__ import annotations

import ctypes
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from spacetimedb.protocol.seam import DeadlineSlot

T = TypeVar("T")
_get_ident = threading.get_ident
_monotonic_ns = time.monotonic_ns

POLL_SECONDS = 0.05


class ReducerTimeout(BaseException):
    """Raised inside a reducer that ran past its budget."""


class CallCancelled(BaseException):
    """Raised inside a call that nobody waits for any more (its client went away)."""


class CallClock:
    """Armed by a host thread around each call; read by the watchdog.

    ``disarm`` and the watchdog's check-and-raise hold the same lock, and ``disarm`` cancels an exception the
    watchdog raised but Python has not delivered yet, so no ``ReducerTimeout`` escapes into host code after it.
    """

    __slots__ = (
        "__weakref__",
        "_budget",
        "deadline",
        "grace_ns",
        "lock",
        "slot",
        "thread_id",
        "token",
        "tripped",
    )

    def __init__(self, slot: DeadlineSlot | None = None, grace_seconds: float = 2.0) -> None:
        self.deadline = 0  # monotonic ns; 0 = no call in progress
        self.thread_id = 0
        self.tripped = False
        self.lock = threading.Lock()
        self.slot = slot  # a worker's shared deadline page: its supervisor kills it past budget + grace
        self.grace_ns = int(grace_seconds * 1e9)
        self.token: object = None  # whom the call in progress is for (``interrupt`` names it)
        self._budget = (0.0, 0)  # the last budget armed, in seconds and in ns (it is the same every call)

    def arm(self, budget_seconds: float, what: str = "module code", token: object = None) -> None:
        self.thread_id = _get_ident()
        self.tripped = False
        self.token = token
        seconds, budget_ns = self._budget
        if budget_seconds != seconds:
            budget_ns = int(budget_seconds * 1e9)
            self._budget = (budget_seconds, budget_ns)
        deadline = self.deadline = _monotonic_ns() + budget_ns
        if self.slot is not None:
            self.slot.arm_until(deadline + self.grace_ns, what)

    def disarm(self) -> None:
        if self.slot is not None:
            self.slot.disarm()
        with self.lock:
            self.deadline = 0
            self.token = None
            if self.tripped:
                _clear_pending(self.thread_id)

    def interrupt(self, token: object) -> bool:
        """From another thread: stop the call in progress with ``CallCancelled`` if it is ``token``'s."""
        with self.lock:
            if not self.deadline or self.token is None or self.token != token:
                return False
            self.tripped = True
            _raise_in_thread(self.thread_id, CallCancelled)
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


class _Watchdog:
    def __init__(self) -> None:
        self._clocks: weakref.WeakSet[CallClock] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, clock: CallClock) -> None:
        with self._lock:
            self._clocks.add(clock)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="reducer-watchdog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            now = _monotonic_ns()
            with self._lock:
                clocks = list(self._clocks)
            for clock in clocks:
                if clock.deadline and now > clock.deadline:
                    with clock.lock:
                        if clock.deadline and now > clock.deadline:
                            clock.tripped = True
                            _raise_in_thread(clock.thread_id, ReducerTimeout)
                            _interrupt_engines(clock.thread_id)


_watchdog = _Watchdog()
# engines whose code a Python exception cannot stop (a WASM loop runs no bytecode): told which thread ran out of
# time, each stops its call if it runs there (``interrupt(thread_id)``)
_engines: weakref.WeakSet[Any] = weakref.WeakSet()


def stop_on_timeout(engine: Any) -> None:
    """Call ``engine.interrupt(thread_id)`` whenever a call on ``thread_id`` runs past its budget."""
    _engines.add(engine)


def _interrupt_engines(thread_id: int) -> None:
    for engine in list(_engines):
        engine.interrupt(thread_id)


def register(clock: CallClock) -> None:
    _watchdog.register(clock)


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


def _clear_pending(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
