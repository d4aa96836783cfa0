"""Building WASM test modules from WAT text (wasmtime compiles it, so no toolchain is needed), with a module def
encoded here as a RawModuleDef V10 value."""

from __future__ import annotations

from typing import Any

import wasmtime

from spacetimedb.module.rawdef_decode import RAW_MODULE_DEF_V10, RAW_V10_TYPESPACE, TAG_V10
from spacetimedb.sats import I64, STRING, U32, ProductType, SumValue, codec
from spacetimedb.sats.meta import type_to_value

UNIT = type_to_value(ProductType(()))
STRING_TYPE = type_to_value(STRING)
CLIENT_CALLABLE = SumValue(1, ())
TYPE_TAGS = {"u32": U32, "i64": I64, "string": STRING}


def product(*elements: tuple[str, Any]) -> Any:
    """The payload of a meta ``ProductType`` value: its elements as (name, type value)."""
    return (tuple((name, type_to_value(ty)) for name, ty in elements),)


def reducer(name: str, *params: tuple[str, Any]) -> tuple[Any, ...]:
    return (name, product(*params), CLIENT_CALLABLE, UNIT, STRING_TYPE)


def module_def_v10(sections: list[SumValue]) -> bytes:
    """BSATN of ``RawModuleDef::V10`` with these sections."""
    return bytes([TAG_V10]) + codec(RAW_MODULE_DEF_V10, RAW_V10_TYPESPACE).encode((sections,))


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def wasm_module(module_def: bytes, imports: str, reducers: list[str], extra: str = "") -> bytes:
    """A SpacetimeDB WASM module: ``__describe_module__`` writes ``module_def`` to its sink, and
    ``__call_reducer__`` runs the body ``reducers[id]`` (WAT instructions leaving an i32 on the stack: 0 for
    success)."""
    branches = "\n".join(
        f"(if (i32.eq (local.get $id) (i32.const {i})) (then (return (block (result i32) {body}))))"
        for i, body in enumerate(reducers)
    )
    text = f"""
    (module
      (import "spacetime_10.0" "bytes_sink_write" (func $sink_write (param i32 i32 i32) (result i32)))
      {imports}
      (memory (export "memory") 1)
      (data (i32.const 1024) "{wat_bytes(module_def)}")
      (func (export "__describe_module__") (param $sink i32)
        (i32.store (i32.const 0) (i32.const {len(module_def)}))
        (drop (call $sink_write (local.get $sink) (i32.const 1024) (i32.const 0))))
      (func (export "__call_reducer__")
        (param $id i32) (param i64 i64 i64 i64 i64 i64 i64) (param $args i32) (param $err i32) (result i32)
        {branches}
        (i32.const 1))
      {extra}
    )
    """
    return wasmtime.wat2wasm(text)
