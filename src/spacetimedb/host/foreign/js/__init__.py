"""The JS engine: SpacetimeDB TypeScript modules (one ESM bundle built with npm ``spacetimedb`` 2.x) in V8.

Modules: ``v8`` (a synchronous driver over mini-racer's native library), ``runtime.js`` (what the module sees:
built-ins, ``spacetime:sys@2.0``/``@2.1``, the hook dispatcher), ``bundle`` (the ESM bundle as a script),
``engine`` (``JsEngine``, the ``ForeignEngine`` whose syscalls go to an ``InstanceEnv``) and ``pool`` (isolates
made before a worker forbids new threads).
"""

from __future__ import annotations

from .engine import JsEngine
from .pool import ISOLATES_PER_WORKER, POOL, IsolatePool, NoIsolateLeft, heap_limit_for


def make_engine(program: bytes) -> JsEngine:
    """A ``JsEngine`` for ``program``, in an isolate from the process's pool."""
    return JsEngine(program, POOL, POOL.heap_limit_bytes)


__all__ = [
    "ISOLATES_PER_WORKER",
    "POOL",
    "IsolatePool",
    "JsEngine",
    "NoIsolateLeft",
    "heap_limit_for",
    "make_engine",
]
