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

import threading
import time
import weakref
from typing import Any

from .clock import CallClock, raise_in_thread
from .errors import CallCancelled, ReducerTimeout

__all__ = ["CallCancelled", "CallClock", "ReducerTimeout", "register", "stop_on_timeout", "unregister"]

POLL_SECONDS = 0.05


class _Watchdog:
    def __init__(self) -> None:
        # held until unregistered: a compiled CallClock cannot be weakly referenced
        self._clocks: set[CallClock] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, clock: CallClock) -> None:
        with self._lock:
            self._clocks.add(clock)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="reducer-watchdog", daemon=True)
                self._thread.start()

    def unregister(self, clock: CallClock) -> None:
        with self._lock:
            self._clocks.discard(clock)

    def _run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            now = time.monotonic_ns()
            with self._lock:
                clocks = list(self._clocks)
            for clock in clocks:
                if clock.deadline and now > clock.deadline:
                    with clock.lock:
                        if clock.deadline and now > clock.deadline:
                            clock.tripped = ReducerTimeout
                            raise_in_thread(clock.thread_id, ReducerTimeout)
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
    """Have the watchdog check ``clock`` until ``unregister``: its owner unregisters it when it shuts down."""
    _watchdog.register(clock)


def unregister(clock: CallClock) -> None:
    _watchdog.unregister(clock)
