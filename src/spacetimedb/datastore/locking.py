"""A readers-writer lock: many read-only transactions, or one mutable transaction."""

from __future__ import annotations

import threading


class RWLock:
    """Writer-preferring readers-writer lock (a waiting writer blocks new readers, so it cannot starve)."""

    __slots__ = ("_cond", "_readers", "_writer", "_writers_waiting")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._writers_waiting = 0

    def acquire_read(self, timeout: float | None = None) -> bool:
        with self._cond:
            if self._writer is None and not self._writers_waiting:
                self._readers += 1
                return True
            if self._writer == threading.get_ident():
                raise RuntimeError("a thread holding the write lock cannot also take the read lock")
            ok = self._cond.wait_for(lambda: self._writer is None and not self._writers_waiting, timeout)
            if ok:
                self._readers += 1
            return ok

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def acquire_write(self, timeout: float | None = None) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._writer is None and self._readers == 0:
                self._writer = me
                return True
            if self._writer == me:
                raise RuntimeError(
                    "the write lock is not reentrant: a mutable transaction is already open here"
                )
            self._writers_waiting += 1
            try:
                ok = self._cond.wait_for(lambda: self._writer is None and self._readers == 0, timeout)
                if ok:
                    self._writer = me
                return ok
            finally:
                self._writers_waiting -= 1

    def release_write(self) -> None:
        with self._cond:
            self._writer = None
            self._cond.notify_all()

    def downgrade(self) -> None:
        """Turn the held write lock into a read lock atomically (no writer can slip in between)."""
        with self._cond:
            self._writer = None
            self._readers += 1
            self._cond.notify_all()

    @property
    def write_locked(self) -> bool:
        return self._writer is not None
