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
from collections.abc import Callable
from typing import Any, Protocol

from spacetimedb.module import LoadedModule, ModuleDef, ModuleError, ProgramKind, program_hash
from spacetimedb.module.rawdef_decode import decode_module_def
from spacetimedb.module.runtime import TxSlot
from spacetimedb.sats import ConnectionId, Identity, ProductType, Timestamp, codec

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
        """Run a view for ``sender``; the BSATN of what it returns."""

    def call_view_anon(self, view_id: int, args: bytes) -> bytes:
        """Run an anonymous view; the BSATN of what it returns."""

    def close(self) -> None:
        """Release the instance (its memory, its store)."""


EngineFactory = Callable[[bytes], ForeignEngine]

_counter = itertools.count(1)


class ForeignModule(LoadedModule):
    """A loaded foreign program: its engine, the engine's ``InstanceEnv`` and the transaction slots the host's
    ``ModuleRuntime`` shares with it."""

    engine: ForeignEngine
    env: InstanceEnv
    tx_slot: TxSlot
    view_slot: TxSlot

    def unload(self) -> None:
        self.engine.close()


def load_foreign(
    program: bytes,
    kind: ProgramKind,
    factory: EngineFactory,
    database_identity: Identity | None = None,
) -> ForeignModule:
    """Instantiate ``program`` with ``factory``, decode and validate its module def, and bind its reducers to
    the engine. Raises ``ModuleError`` naming what is wrong or what the server cannot serve."""
    engine = factory(program)
    try:
        module_def = decode_module_def(engine.describe())
        tx_slot, view_slot = TxSlot(), TxSlot()
        env = InstanceEnv(module_def, tx_slot, None, database_identity or Identity(0), view_slot)
        _bind_reducers(module_def, engine, env)
        engine.attach(env)
    except BaseException:
        engine.close()
        raise
    loaded = ForeignModule(module_def, program_hash(program), kind, f"_stdb_foreign_{next(_counter)}", None)
    loaded.engine, loaded.env, loaded.tx_slot, loaded.view_slot = engine, env, tx_slot, view_slot
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
