"""Foreign modules: programs built by SpacetimeDB's own toolchains, run unchanged.

Owns: the host side of SpacetimeDB's module ABI shared by every engine (``abi.InstanceEnv``: the syscalls over
the current transaction, SpacetimeDB's errnos), the engine protocol and the glue that turns a foreign program
into a ``LoadedModule`` (``engine``), and the WASM engine for Rust and C# modules (``wasm``, wasmtime). The JS
engine for TypeScript modules plugs into the same registry (``register_engine``).
Importing this package registers the engines with ``module.load_module``.
May import: ``sats``, ``datastore``, ``module``, and the host's ``watchdog``.
"""

from __future__ import annotations

from spacetimedb.module import ProgramKind, register_foreign_loader

from .abi import BufferTooSmall, HostCallError, InstanceEnv
from .engine import EngineFactory, ForeignEngine, ForeignModule, ForeignPanic, ForeignUserError, load_foreign


def register_engine(kind: ProgramKind, factory: EngineFactory) -> None:
    """Load programs of ``kind`` with engines made by ``factory(program)``."""

    def load(program: bytes, program_kind: ProgramKind) -> ForeignModule:
        return load_foreign(program, program_kind, factory)

    register_foreign_loader(kind, load)


def _register_wasm() -> None:
    from .wasm import WasmEngine

    register_engine(ProgramKind.WASM, WasmEngine)


def _register_js() -> None:
    from .js import make_engine

    register_engine(ProgramKind.JS, make_engine)


_register_wasm()
_register_js()

__all__ = [
    "BufferTooSmall",
    "EngineFactory",
    "ForeignEngine",
    "ForeignModule",
    "ForeignPanic",
    "ForeignUserError",
    "HostCallError",
    "InstanceEnv",
    "load_foreign",
    "register_engine",
]
