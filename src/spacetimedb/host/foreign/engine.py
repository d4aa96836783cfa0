"""Foreign engines, and the glue that makes a foreign program one more ``LoadedModule``.

A ``ForeignEngine`` runs one program of SpacetimeDB's own toolchains (a WASM module, a JS bundle): it describes
the module (BSATN ``RawModuleDef``) and calls its reducers with BSATN arguments; its syscalls go to the
``InstanceEnv`` it is attached to. ``load_foreign`` builds a ``ModuleDef`` from the description
(``module.rawdef_decode``) whose reducer functions dispatch into the engine, so that a foreign reducer runs through
the same ``ModuleRuntime.reducer_call(name).call(ctx, args)`` path as a Python one: the same transaction,
rollback, subscriptions, scheduler, module log, time budget and commitlog. Views run the same way through the
host's view machinery (reading through its read-only transaction); procedures run in a second instance of the
program, since they run on procedure threads while reducers run on the host thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any, Protocol

from spacetimedb.module import LoadedModule, ModuleDef, ModuleError, ProcedureDef, ProgramKind, program_hash
from spacetimedb.module.rawdef_decode import decode_module_def
from spacetimedb.module.slots import TxSlot
from spacetimedb.module.views import OPTIONAL, ViewDef
from spacetimedb.sats import (
    STRING,
    ArrayType,
    ConnectionId,
    DecodeError,
    Identity,
    ProductType,
    Timestamp,
    codec,
)
from spacetimedb.sql import SqlError, compile_statement, execute, parse_script
from spacetimedb.sql.run import is_read_only

from .abi import InstanceEnv


class ForeignUserError(ModuleError):
    """The module's reducer reported an error to its caller (a ``SenderError``, an ``Err`` return): the
    message is the module's own, shown as it is."""


class ForeignPanic(Exception):
    """The module failed in any other way: a trap, a thrown error, a panic."""


class ForeignEngine(Protocol):
    """One instance of a foreign program."""

    def attach(self, env: InstanceEnv) -> None:
        """Send the program's syscalls to ``env`` from now on (called once, after ``describe``)."""

    def describe(self) -> bytes:
        """The BSATN ``RawModuleDef`` the program describes itself with."""

    def call_reducer(
        self,
        reducer_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> None:
        """Run reducer ``reducer_id`` (its index in the module def) with BSATN ``args``; raises
        ``ForeignUserError`` or ``ForeignPanic``."""

    def call_procedure(
        self,
        procedure_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> bytes:
        """Run a procedure; its BSATN return value."""

    def call_view(self, view_id: int, sender: Identity, args: bytes) -> bytes:
        """Run view ``view_id`` (its ``index`` in the module def: SpacetimeDB numbers per-caller and anonymous
        views apart) for ``sender``. Returns its result header first,
        as SpacetimeDB's ``ViewResultHeader``: a 0 byte (RowData) then the BSATN array of rows, or a 1 byte
        (RawSql) then the query's BSATN string (a query-builder view), which the host runs over the view's
        read-only transaction."""

    def call_view_anon(self, view_id: int, args: bytes) -> bytes:
        """Run an anonymous view; its result as ``call_view``'s."""

    def close(self) -> None:
        """Release the instance (its memory, its store)."""


EngineFactory = Callable[[bytes], ForeignEngine]

_counter = itertools.count(1)


class ForeignModule(LoadedModule):
    """A loaded foreign program: its engine, the engine's ``InstanceEnv`` and the transaction slots the host's
    ``ModuleRuntime`` shares with it; procedures run in an instance of their own (``procedure_engine``), since
    they run on procedure threads while reducers run on the host thread."""

    engine: ForeignEngine
    env: InstanceEnv
    tx_slot: TxSlot
    view_slot: TxSlot
    procedure_engine: ForeignEngine | None

    def unload(self) -> None:
        self.engine.close()
        if self.procedure_engine is not None:
            self.procedure_engine.close()


def load_foreign(
    program: bytes,
    kind: ProgramKind,
    factory: EngineFactory,
    database_identity: Identity | None = None,
) -> ForeignModule:
    """Instantiate ``program`` with ``factory``, decode and validate its module def, and bind its reducers to
    the engine. Raises ``ModuleError`` naming what is wrong or what the server cannot serve."""
    identity = database_identity or Identity(0)
    engine = factory(program)
    procedure_engine = None
    try:
        module_def = decode_module_def(engine.describe())
        tx_slot, view_slot = TxSlot(), TxSlot()
        env = InstanceEnv(module_def, tx_slot, None, identity, view_slot)
        _bind_reducers(module_def, engine, env)
        _bind_views(module_def, engine, env)
        engine.attach(env)
        if module_def.procedures:
            procedure_engine = factory(program)
            procedure_env = InstanceEnv(module_def, TxSlot(), None, identity)
            procedure_engine.attach(procedure_env)
            _bind_procedures(module_def, procedure_engine, procedure_env)
    except BaseException:
        engine.close()
        if procedure_engine is not None:
            procedure_engine.close()
        raise
    loaded = ForeignModule(module_def, program_hash(program), kind, f"_stdb_foreign_{next(_counter)}", None)
    loaded.engine, loaded.env, loaded.tx_slot, loaded.view_slot = engine, env, tx_slot, view_slot
    loaded.procedure_engine = procedure_engine
    return loaded


def _bind_reducers(module_def: ModuleDef, engine: ForeignEngine, env: InstanceEnv) -> None:
    for reducer_id, reducer in enumerate(module_def.reducers.values()):
        reducer.func = _reducer_func(reducer_id, reducer.params, module_def, engine, env)


def _reducer_func(
    reducer_id: int, params: ProductType, module_def: ModuleDef, engine: ForeignEngine, env: InstanceEnv
) -> Callable[..., None]:
    encode = codec(params, module_def.typespace).encode

    def call(ctx: Any, *args: Any) -> None:
        env.begin_call(ctx.connection_id, ctx.sender_auth.payload, database_identity=ctx.identity)
        try:
            engine.call_reducer(reducer_id, ctx.sender, ctx.connection_id, ctx.timestamp, encode(args))
        finally:
            env.end_call()

    call.__name__ = call.__qualname__ = list(module_def.reducers)[reducer_id]
    return call


def _bind_procedures(module_def: ModuleDef, engine: ForeignEngine, env: InstanceEnv) -> None:
    """Procedure ``i`` calls the engine's procedure ``i``, one at a time (the instance is not shared)."""
    lock = threading.Lock()
    for procedure_id, procedure in enumerate(module_def.procedures.values()):
        procedure.func = _procedure_func(procedure_id, procedure, module_def, engine, env, lock)


def _procedure_func(
    procedure_id: int,
    procedure: ProcedureDef,
    module_def: ModuleDef,
    engine: ForeignEngine,
    env: InstanceEnv,
    lock: threading.Lock,
) -> Callable[..., Any]:
    encode = codec(procedure.params, module_def.typespace).encode
    decode = codec(procedure.return_type, module_def.typespace).decode

    def call(ctx: Any, *args: Any) -> Any:
        with lock:
            env.begin_call(
                ctx.connection_id, ctx.sender_auth.payload, database_identity=ctx.identity, procedure=ctx
            )
            try:
                result = engine.call_procedure(
                    procedure_id, ctx.sender, ctx.connection_id, ctx.timestamp, encode(args)
                )
            finally:
                env.end_call()
        try:
            return decode(bytes(result))
        except DecodeError as exc:
            raise ForeignPanic(
                f"procedure `{procedure.name}` returned a value that does not decode: {exc}"
            ) from None

    call.__name__ = call.__qualname__ = procedure.name
    return call


_VIEW_ROWS, _VIEW_SQL = 0, 1


def _bind_views(module_def: ModuleDef, engine: ForeignEngine, env: InstanceEnv) -> None:
    for view in module_def.views.values():
        view.func = _view_func(view, engine, env)


def _view_func(view: ViewDef, engine: ForeignEngine, env: InstanceEnv) -> Callable[[Any], Any]:
    rows_codec = codec(ArrayType(view.row_type))
    call_id = view.call_id if view.call_id >= 0 else view.index

    def call(ctx: Any) -> Any:
        env.begin_call(view=True, database_identity=ctx.identity)
        try:
            if view.anonymous:
                result = engine.call_view_anon(call_id, b"")
            else:
                result = engine.call_view(call_id, ctx.sender, b"")
        finally:
            env.end_call()
        rows = _view_rows(view, bytes(result), rows_codec, env.view_slot.tx if env.view_slot else None, ctx)
        if view.shape == OPTIONAL:
            return rows[0] if rows else None
        return rows

    call.__name__ = call.__qualname__ = view.name
    return call


def _view_rows(view: ViewDef, result: bytes, rows_codec: Any, reader: Any, ctx: Any) -> list[tuple[Any, ...]]:
    """The rows of a view's result: the rows it returned, or those of the query it returned (query-builder
    views), read through the view's read-only transaction so that its result stays live."""
    if not result or result[0] not in (_VIEW_ROWS, _VIEW_SQL):
        raise ForeignPanic(f"view `{view.name}` returned a result with no valid header")
    try:
        if result[0] == _VIEW_ROWS:
            return list(rows_codec.decode(result[1:]))
        query = _STRING.decode(result[1:])
    except DecodeError as exc:
        raise ForeignPanic(f"view `{view.name}` returned a result that does not decode: {exc}") from None
    return _query_rows(view, query, reader, getattr(ctx, "sender", None) or Identity(0))


_STRING = codec(STRING)


def _query_rows(view: ViewDef, query: str, reader: Any, caller: Identity) -> list[tuple[Any, ...]]:
    """Run the SELECT a query-builder view returned, as the module (no row-level security), over ``reader``
    (the view's ``ReadOnlyTx``, which records what the query read)."""
    try:
        statements = parse_script(query)
        if len(statements) != 1 or not is_read_only(statements[0]):
            raise SqlError("a view's query is one SELECT")
        source = _ViewQueryReader(reader)
        plan = compile_statement(statements[0], source, caller, True)
        rows = execute(plan, source).rows
    except SqlError as exc:
        raise ForeignPanic(f"view `{view.name}` returned the query {query!r}, which fails: {exc}") from None
    width = len(view.row_type.elements)
    if any(len(row) != width for row in rows):
        raise ForeignPanic(f"view `{view.name}`: its query {query!r} returns rows that are not its row type")
    return [tuple(row) for row in rows]


class _ViewQueryReader:
    """What the SQL engine reads through for a view's query: rows from the view's ``ReadOnlyTx`` (which records
    the reads), schema questions answered by the transaction it wraps."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._tx = reader.tx

    def __getattr__(self, name: str) -> Any:
        row_reads = ("scan", "count", "seek", "find", "range", "prefix", "prefix_range")
        return getattr(self._reader if name in row_reads else self._tx, name)
