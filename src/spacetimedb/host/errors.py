"""The host's own exceptions, in a module of their own: the compiled hot-path modules (``spacetimedb.native``)
cannot define subclasses of builtin exceptions other than ``Exception``, and callers import them from here or
from ``module_host``."""

from __future__ import annotations


class HostFailedError(RuntimeError):
    """The host has panicked or stopped; the job was not run."""


class InjectedFault(RuntimeError):
    """Raised at a fault-injection point (tests only)."""


class ReducerTimeout(BaseException):
    """Raised inside a reducer that ran past its budget. A ``BaseException``, so that ``except Exception`` in
    module code does not swallow it."""


class CallCancelled(BaseException):
    """Raised inside a call that nobody waits for any more (its client went away)."""
