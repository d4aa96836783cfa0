"""Loading WASM modules: SpacetimeDB's initialisation order, and every refusal names what is wrong before the
module is accepted."""

from __future__ import annotations

import pytest
import wasmtime

from spacetimedb.host.foreign.engine import ForeignUserError
from spacetimedb.host.foreign.wasm import WasmEngine
from spacetimedb.module import ModuleError, ProgramKind, detect_kind, load_module
from spacetimedb.sats import SumValue

from .wat import module_def_v10, reducer, wasm_module

NOOP_DEF = module_def_v10([SumValue(3, [reducer("noop")])])


def test_initialisation_runs_initialize_then_preinits_by_name_then_setup():
    def step(digit: int) -> str:
        return f"(i32.store (i32.const 8) (i32.add (i32.mul (i32.load (i32.const 8)) (i32.const 10)) (i32.const {digit})))"

    extra = f"""
      (func (export "__preinit__20_second") {step(3)})
      (func (export "_initialize") {step(1)})
      (func (export "__preinit__10_first") {step(2)})
      (func (export "__setup__") (param i32) (result i32) {step(4)} (i32.const 0))
    """
    engine = WasmEngine(wasm_module(NOOP_DEF, "", ["(i32.const 0)"], extra))
    assert int.from_bytes(engine._read(8, 4), "little") == 1234


def test_a_failing_setup_is_the_modules_error():
    extra = """
      (data (i32.const 64) "no config")
      (func (export "__setup__") (param $sink i32) (result i32)
        (i32.store (i32.const 0) (i32.const 9))
        (drop (call $sink_write (local.get $sink) (i32.const 64) (i32.const 0)))
        (i32.const 1))
    """
    with pytest.raises(ForeignUserError, match="no config"):
        WasmEngine(wasm_module(NOOP_DEF, "", ["(i32.const 0)"], extra))


@pytest.mark.parametrize(
    ("imports", "message"),
    [
        (
            '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
            "wasi_snapshot_preview1::fd_write",
        ),
        (
            '(import "spacetime_10.0" "volatile_nonatomic_schedule_immediate" (func (param i32 i32 i32 i32)))',
            "volatile_nonatomic_schedule_immediate, which this server does not serve",
        ),
    ],
)
def test_imports_the_server_does_not_serve_are_refused_by_name(imports: str, message: str):
    with pytest.raises(ModuleError, match=message):
        load_module(wasm_module(NOOP_DEF, imports, ["(i32.const 0)"]))


def test_what_is_not_a_spacetimedb_module_is_refused():
    with pytest.raises(ModuleError, match="not a valid WebAssembly module"):
        load_module(b"\0asm\x01\0\0\0garbage")
    plain = wasmtime.wat2wasm('(module (memory (export "memory") 1))')
    with pytest.raises(ModuleError, match="does not export `__describe_module__`"):
        load_module(plain)
    garbage_def = wasm_module(b"\x02\xff\xff", "", ["(i32.const 0)"])
    with pytest.raises(ModuleError, match="V10 does not decode"):
        load_module(garbage_def)


def test_program_kinds_are_detected():
    assert detect_kind(wasm_module(NOOP_DEF, "", ["(i32.const 0)"])) is ProgramKind.WASM
    assert detect_kind(b'import * as sys from "spacetime:sys@2.0";\nexport default 1;\n') is ProgramKind.JS
    assert detect_kind(b'x = "from \\"spacetime:sys@2.0\\""\n') is ProgramKind.PYTHON_SOURCE
    loaded = load_module(wasm_module(NOOP_DEF, "", ["(i32.const 0)"]))
    assert loaded.kind is ProgramKind.WASM and list(loaded.module_def.reducers) == ["noop"]
    loaded.unload()
