"""The Python module API and everything the server needs to run a module.

Owns: what module authors write (``@table``, ``@reducer``, ``@procedure``, ``@type``, column markers, the sized number aliases,
``Range``, ``ReducerContext``, ``log``, ``client_visibility_filter``); the validated module definition
(``ModuleDef``) and its RawModuleDef v9 form, and reading a RawModuleDef V9/V10 that a module built by
SpacetimeDB's toolchains describes itself with (``rawdef_decode``), and upstream's identifier case conversion
it and the code generator share (``casing``); loading programs (``load_module``,
``package_program``; WASM and JS programs go to the loaders the host registers, ``register_foreign_loader``); the runtime
objects reducers use (``ModuleRuntime``, ``ctx.db`` handles); migration planning between two definitions.
May import: ``spacetimedb.sats`` and ``spacetimedb.datastore`` only. The module *host* (reducer thread,
lifecycle, scheduler, module logs) builds on this package and lives in ``spacetimedb.host``.
"""

from spacetimedb.datastore import UniqueConstraintViolation
from spacetimedb.sats import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp, Uuid

from . import log
from .api import Registry, anonymous_view, client_visibility_filter, procedure, reducer, table, view
from .api import type as type  # not in __all__: a star import must not shadow the builtin
from .builder import build_module_def, snake_case
from .calls import ProcedureCall, ReducerFunction, begin_reducer_call
from .context import INTERNAL_AUTH, AuthCtx, ProcedureContext, ReducerContext
from .errors import (
    ColumnValueError,
    MigrationError,
    ModuleError,
    NoSuchReducerError,
    NoTransactionError,
    ReducerArgsError,
)
from .http import HttpClient, HttpError, HttpRequest, HttpResponse
from .index_handles import IndexHandle, UniqueIndexHandle
from .loader import (
    LoadedModule,
    ProgramKind,
    detect_kind,
    load_module,
    package_program,
    program_hash,
    register_foreign_loader,
)
from .markers import (
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
from .migrate import MigrationPlan, MigrationStep, apply_migration, create_module_tables, plan_migration
from .moduledef import (
    ColumnDef,
    ConstraintDef,
    IndexDef,
    ModuleDef,
    ProcedureDef,
    ReducerDef,
    RowLevelSecurityDef,
    ScheduleDef,
    SequenceDef,
    TableDef,
    TypeDef,
)
from .rawdef import raw_module_def_bsatn, raw_module_def_json
from .runtime import ModuleRuntime, TableHandle
from .slots import ThreadBoundTxSlot
from .views import AnonymousViewContext, ReadOnlyError, ReadSet, ViewContext, ViewDef, ViewError, call_view

__all__ = [
    "AnonymousViewContext",
    "INTERNAL_AUTH",
    "AuthCtx",
    "AutoInc",
    "Column",
    "HttpClient",
    "HttpError",
    "HttpRequest",
    "HttpResponse",
    "ProcedureCall",
    "ReducerFunction",
    "begin_reducer_call",
    "ProcedureContext",
    "ProcedureDef",
    "ThreadBoundTxSlot",
    "ColumnDef",
    "ColumnValueError",
    "ConnectionId",
    "ConstraintDef",
    "Identity",
    "Index",
    "IndexDef",
    "IndexHandle",
    "LoadedModule",
    "MigrationError",
    "MigrationPlan",
    "MigrationStep",
    "ModuleDef",
    "ModuleError",
    "ModuleRuntime",
    "NoSuchReducerError",
    "NoTransactionError",
    "PrimaryKey",
    "ProgramKind",
    "Range",
    "ReducerArgsError",
    "ReducerContext",
    "ReducerDef",
    "Registry",
    "RowLevelSecurityDef",
    "ScheduleAt",
    "ScheduleDef",
    "SequenceDef",
    "TableDef",
    "TableHandle",
    "TimeDuration",
    "Timestamp",
    "TypeDef",
    "Unique",
    "UniqueConstraintViolation",
    "UniqueIndexHandle",
    "Uuid",
    "ReadOnlyError",
    "ReadSet",
    "ViewContext",
    "ViewDef",
    "ViewError",
    "anonymous_view",
    "apply_migration",
    "call_view",
    "build_module_def",
    "client_visibility_filter",
    "create_module_tables",
    "detect_kind",
    "f32",
    "f64",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "i256",
    "load_module",
    "register_foreign_loader",
    "log",
    "package_program",
    "plan_migration",
    "procedure",
    "view",
    "program_hash",
    "raw_module_def_bsatn",
    "raw_module_def_json",
    "reducer",
    "snake_case",
    "table",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
]
