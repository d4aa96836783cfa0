"""SpacetimeDB-style database server in Python.

The top-level package re-exports the module API (``@table``, ``@reducer``, the SATS type aliases and
special types) lazily, so that importing ``spacetimedb`` (and so ``spacetimedb.cli``) stays cheap: nothing
below is imported until a module program first touches one of these names.
"""

from __future__ import annotations

# first: it decides whether the compiled (mypyc) hot path or its .py sources are imported (see native.py)
from spacetimedb import native as native

# not `from typing import TYPE_CHECKING`: importing typing alone would double this package's import time
TYPE_CHECKING = False

__version__ = "0.1.0"

# public name -> the submodule that defines it
_LAZY_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "table",
            "reducer",
            "type",
            "client_visibility_filter",
            "procedure",
            "view",
            "anonymous_view",
        ),
        "spacetimedb.module.api",
    ),
    **dict.fromkeys(
        (
            "PrimaryKey",
            "Unique",
            "AutoInc",
            "Column",
            "Index",
            "Range",
            "u8",
            "u16",
            "u32",
            "u64",
            "u128",
            "u256",
            "i8",
            "i16",
            "i32",
            "i64",
            "i128",
            "i256",
            "f32",
            "f64",
        ),
        "spacetimedb.module.markers",
    ),
    **dict.fromkeys(("ReducerContext", "ProcedureContext", "AuthCtx"), "spacetimedb.module.context"),
    **dict.fromkeys(("HttpError", "HttpResponse"), "spacetimedb.module.http"),
    **dict.fromkeys(("ViewContext", "AnonymousViewContext"), "spacetimedb.module.views"),
    **dict.fromkeys(
        ("Identity", "ConnectionId", "Timestamp", "TimeDuration", "ScheduleAt", "Uuid"),
        "spacetimedb.sats.values",
    ),
    "UniqueConstraintViolation": "spacetimedb.datastore.errors",
}
# names that are whole submodules
_LAZY_MODULES: dict[str, str] = {"log": "spacetimedb.module.log"}

# `type` is deliberately left out of __all__: a star import must not shadow the builtin
__all__ = [
    "AuthCtx",
    "AnonymousViewContext",
    "AutoInc",
    "Column",
    "ConnectionId",
    "HttpError",
    "HttpResponse",
    "ProcedureContext",
    "Identity",
    "Index",
    "PrimaryKey",
    "Range",
    "ReducerContext",
    "ScheduleAt",
    "TimeDuration",
    "Timestamp",
    "Unique",
    "UniqueConstraintViolation",
    "Uuid",
    "ViewContext",
    "anonymous_view",
    "client_visibility_filter",
    "procedure",
    "f32",
    "f64",
    "i128",
    "i16",
    "i256",
    "i32",
    "i64",
    "i8",
    "log",
    "reducer",
    "table",
    "u128",
    "u16",
    "u256",
    "u32",
    "u64",
    "u8",
    "view",
]


def __getattr__(name: str) -> Any:
    import importlib

    module_name = _LAZY_MODULES.get(name)
    if module_name is not None:
        value: Any = importlib.import_module(module_name)
    else:
        module_name = _LAZY_EXPORTS.get(name)
        if module_name is None:
            raise AttributeError(f"module 'spacetimedb' has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_EXPORTS, *_LAZY_MODULES})


if TYPE_CHECKING:
    from typing import Any

    from spacetimedb.datastore.errors import UniqueConstraintViolation
    from spacetimedb.module import log
    from spacetimedb.module.api import (
        anonymous_view,
        client_visibility_filter,
        procedure,
        reducer,
        table,
        view,
    )
    from spacetimedb.module.api import type as type
    from spacetimedb.module.context import AuthCtx, ProcedureContext, ReducerContext
    from spacetimedb.module.http import HttpError, HttpResponse
    from spacetimedb.module.markers import (
        AutoInc,
        Column,
        Index,
        PrimaryKey,
        Range,
        Unique,
        f32,
        f64,
        i8,
        i16,
        i32,
        i64,
        i128,
        i256,
        u8,
        u16,
        u32,
        u64,
        u128,
        u256,
    )
    from spacetimedb.module.views import AnonymousViewContext, ViewContext
    from spacetimedb.sats.values import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp, Uuid
