"""Loading WASM modules: SpacetimeDB's initialisation order, and every refusal names what is wrong before the
module is accepted."""

from __future__ import annotations

import pytest
import wasmtime

from spacetimedb.host.foreign.engine import ForeignUserError
from spacetimedb.host.foreign.wasm import WasmEngine
from spacetimedb.module import ModuleError, ProgramKind, detect_kind, load_module
from spacetimedb.sats import U32, SumValue

from ..helpers import DB, OWNER, LocalDatabases, call, rows
from .wat import module_def_v10, product, reducer, wasm_module

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
            '(import "spacetime_10.0" "no_such_call" (func (param i32 i32 i32 i32)))',
            "spacetime_10.0::no_such_call, which this server does not provide",
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


RANGE_IMPORTS = """
  (import "spacetime_10.0" "table_id_from_name" (func $table_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "index_id_from_name" (func $index_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_insert_bsatn" (func $insert (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_delete_by_index_scan_range_bsatn"
    (func $delete_range (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
"""
FILL = """
  (drop (call $table_id (i32.const 2048) (i32.const 1) (i32.const 8)))
  (i32.store (i32.const 16) (i32.const 1))
  (block $done (loop $next
    (i32.store (i32.const 0) (i32.const 4))
    (drop (call $insert (i32.load (i32.const 8)) (i32.const 16) (i32.const 0)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (br_if $done (i32.gt_u (i32.load (i32.const 16)) (i32.const 5)))
    (br $next)))
  (i32.const 0)
"""
# delete x in [2, 4): Bound::Included(2) at 32, Bound::Excluded(4) at 40, each a tag byte and a u32
DROP_RANGE = """
  (drop (call $index_id (i32.const 2056) (i32.const 13) (i32.const 12)))
  (call $delete_range (i32.load (i32.const 12)) (i32.const 0) (i32.const 0) (i32.const 0)
    (i32.const 32) (i32.const 5) (i32.const 40) (i32.const 5) (i32.const 24))
"""


def test_range_syscalls_through_the_module_memory():
    table = (
        "t",
        0,
        [],
        [("t_x_idx_btree", "x", SumValue(0, [0]))],
        [],
        [],
        SumValue(1, ()),
        SumValue(0, ()),
        [],
        False,
    )
    module_def = module_def_v10(
        [
            SumValue(0, ([SumValue(2, product(("x", U32)))],)),
            SumValue(2, [table]),
            SumValue(3, [reducer("fill"), reducer("drop_range")]),
        ]
    )
    extra = r'(data (i32.const 2048) "t") (data (i32.const 2056) "t_x_idx_btree")'
    extra += r' (data (i32.const 32) "\00\02\00\00\00") (data (i32.const 40) "\01\04\00\00\00")'
    program = wasm_module(module_def, RANGE_IMPORTS, [FILL, DROP_RANGE], extra)
    dbs = LocalDatabases(None)
    try:
        dbs.publish(DB, OWNER, program)
        host = dbs.get_or_launch(DB)
        assert call(host, "fill").ok
        outcome = call(host, "drop_range")
        assert outcome.ok, outcome
        assert rows(host, "t") == [(1,), (4,), (5,)]
    finally:
        dbs.shutdown()
