"""Foreign engines, and the glue that makes a foreign program one more ``LoadedModule``.

A ``ForeignEngine`` runs one program of SpacetimeDB's own toolchains (a WASM module, a JS bundle): it describes
the module (BSATN ``RawModuleDef``) and calls its reducers with BSATN arguments; its syscalls go to the
``InstanceEnv`` it is attached to. ``load_foreign`` builds a ``ModuleDef`` from the description
(``module.rawdef_decode``) whose reducer functions dispatch into the engine, so that a foreign reducer runs through
the same ``ModuleRuntime.reducer_call(name).call(ctx, args)`` path as a Python one: the same transaction,
rollback, subscriptions, scheduler, module log, time budget and commitlog.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any, Protocol

from spacetimedb.module import LoadedModule, ModuleDef, ModuleError, ProcedureDef, ProgramKind, program_hash
from spacetimedb.module.rawdef_decode import decode_module_def
from spacetimedb.module.runtime import TxSlot
from spacetimedb.module.views import OPTIONAL, ViewDef
from spacetimedb.sats import ArrayType, ConnectionId, DecodeError, Identity, ProductType, Timestamp, codec

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
        """Run view ``view_id`` (its ``index`` in the module def) for ``sender``. Returns its result header first,
        as SpacetimeDB's ``ViewResultHeader``: a 0 byte (RowData) then the BSATN array of rows, or a 1 byte
        (RawSql) then the query's BSATN string."""

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
    """The module numbers its views per kind (anonymous or not): its ``__call_view_anon__(0)`` is the first
    anonymous view (``rawdef_decode`` checked the RawModuleDef's indexes are those positions)."""
    of_kind = {True: 0, False: 0}
    for view in module_def.views.values():
        view.func = _view_func(view, of_kind[view.anonymous], engine, env)
        of_kind[view.anonymous] += 1


def _view_func(view: ViewDef, fn_index: int, engine: ForeignEngine, env: InstanceEnv) -> Callable[[Any], Any]:
    rows_codec = codec(ArrayType(view.row_type))

    def call(ctx: Any) -> Any:
        env.begin_call(view=True, database_identity=ctx.identity)
        try:
            if view.anonymous:
                result = engine.call_view_anon(fn_index, b"")
            else:
                result = engine.call_view(fn_index, ctx.sender, b"")
        finally:
            env.end_call()
        rows = _view_rows(view.name, bytes(result), rows_codec)
        if view.shape == OPTIONAL:
            return rows[0] if rows else None
        return rows

    call.__name__ = call.__qualname__ = view.name
    return call


def _view_rows(name: str, result: bytes, rows_codec: Any) -> list[tuple[Any, ...]]:
    if not result or result[0] not in (_VIEW_ROWS, _VIEW_SQL):
        raise ForeignPanic(f"view `{name}` returned a result with no valid header")
    if result[0] == _VIEW_SQL:
        raise ForeignPanic(
            f"view `{name}` returned a SQL query (a query-builder view): views defined by queries are not served yet"
        )
    try:
        return list(rows_codec.decode(result[1:]))
    except DecodeError as exc:
        raise ForeignPanic(f"view `{name}` returned rows that do not decode: {exc}") from None
