"""A readers-writer lock: many read-only transactions, or one mutable transaction.

The writer path is the hot one (every reducer opens a mutable transaction), so it is one C-level lock
acquire when no reader is active. Writers are preferred: a writer holds ``_gate`` while it waits for active
readers to leave, and new readers must pass ``_gate``, so a stream of readers cannot starve it.
"""

from __future__ import annotations

import threading
from typing import Final

_get_ident: Final = threading.get_ident


class RWLock:
    __slots__ = ("_acquire_gate", "_count", "_drained", "_gate", "_readers", "_writer")

    def __init__(self) -> None:
        self._gate = threading.Lock()
        # bound once: compiled, ``self._gate.acquire()`` looks the method up by name at every call
        self._acquire_gate = self._gate.acquire
        self._count = threading.Lock()
        self._readers = 0
        # the writer's thread ident, 0 for none (no thread has ident 0): an int, which compiled code keeps
        # unboxed, where ``int | None`` would box a new object at every write acquire
        self._writer = 0
        # set by a writer waiting for the last reader to leave; that reader sets it
        self._drained: threading.Event | None = None

    def acquire_read(self, timeout: float | None = None) -> bool:
        if self._writer == _get_ident():
            raise RuntimeError("a thread holding the write lock cannot also take the read lock")
        if timeout is None:
            self._gate.acquire()
        elif not self._gate.acquire(timeout=timeout):
            return False
        with self._count:
            self._readers += 1
        self._gate.release()
        return True

    def release_read(self) -> None:
        with self._count:
            self._readers -= 1
            if self._readers == 0 and self._drained is not None:
                self._drained.set()

    def acquire_write(self, timeout: float | None = None) -> bool:
        me: int = _get_ident()
        if self._writer == me:
            raise RuntimeError("the write lock is not reentrant: a mutable transaction is already open here")
        if timeout is None:
            self._acquire_gate()
        elif not self._acquire_gate(timeout=timeout):
            return False
        if self._readers and not self._wait_for_readers(timeout):
            self._gate.release()
            return False
        self._writer = me
        return True

    def _wait_for_readers(self, timeout: float | None) -> bool:
        drained = threading.Event()
        with self._count:
            if not self._readers:
                return True
            self._drained = drained
        try:
            return drained.wait(timeout)
        finally:
            with self._count:
                self._drained = None

    def release_write(self) -> None:
        self._writer = 0
        self._gate.release()

    def downgrade(self) -> None:
        """Turn the held write lock into a read lock atomically (no writer can slip in between)."""
        with self._count:
            self._readers += 1
        self._writer = 0
        self._gate.release()
