"""V8 isolates made before a sandboxed worker forbids new threads.

Every isolate runs on a thread of its own, started when the isolate is made (``v8.Isolate``). A worker forbids
thread creation (seccomp) before any module code runs, so it makes the isolates its JS modules will need first
(``prepare``) and then ``seal``s the pool: from then on a module takes a prepared isolate, and a load that
finds none left fails with a clear error instead of trying to start a thread (which the filter refuses, and
which V8 does not survive). An isolate is never reused: a module leaves its globals behind in it.

A process that never seals (a test, a tool) makes isolates on demand.
"""

from __future__ import annotations

import threading

from . import v8

# a running database's module and a new version of it being loaded for an update (or, validating, the new
# program and the current one), each with a second instance for its procedures (host.foreign.load_foreign)
ISOLATES_PER_WORKER = 4


class NoIsolateLeft(RuntimeError):
    """The worker has used every isolate it prepared."""


# the V8 heap of one module: at most this, and at most a quarter of the worker's memory limit
MAX_HEAP_LIMIT = 256 << 20


def heap_limit_for(memory_bytes: int | None) -> int:
    return MAX_HEAP_LIMIT if memory_bytes is None else max(16 << 20, min(MAX_HEAP_LIMIT, memory_bytes // 4))


class IsolatePool:
    def __init__(self) -> None:
        self.heap_limit_bytes = MAX_HEAP_LIMIT  # what each module's V8 heap may use (``heap_limit_for``)
        self._ready: list[v8.Isolate] = []
        self._prepared = 0
        self._sealed = False
        self._lock = threading.Lock()

    def prepare(self, count: int = ISOLATES_PER_WORKER) -> None:
        """Make isolates until ``count`` are ready (call while threads may still be started)."""
        with self._lock:
            if self._sealed:
                raise NoIsolateLeft("isolates can no longer be made: this process forbade new threads")
            while len(self._ready) < count:
                self._ready.append(v8.Isolate())
                self._prepared += 1

    def seal(self) -> None:
        """From now on hand out prepared isolates only (the process is about to forbid new threads)."""
        with self._lock:
            self._sealed = True

    def take(self) -> v8.Isolate:
        with self._lock:
            if self._ready:
                return self._ready.pop()
            if self._sealed:
                raise NoIsolateLeft(self._why_none_left())
        return v8.Isolate()

    def _why_none_left(self) -> str:
        if not self._prepared:
            return (
                "this database's worker runs a module that is not JS, so it made no V8 isolate before it "
                "confined itself: a database does not switch to a JS module in place (publish with -c to start "
                "it afresh with the JS module)"
            )
        return (
            f"this database's worker has no V8 isolate left for another JS module (it made {self._prepared} "
            "before it confined itself)"
        )

    def give_back(self, isolate: v8.Isolate) -> None:
        """An unloaded module's isolate: kept for the next module where no new one can be made, else closed."""
        with self._lock:
            if self._sealed:
                self._ready.append(isolate)
                return
        isolate.close()

    def available(self) -> int:
        with self._lock:
            return len(self._ready)


POOL = IsolatePool()
