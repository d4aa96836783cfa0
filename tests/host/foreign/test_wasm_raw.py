"""The unchecked wasmtime calls of ``host.foreign.raw`` (wasmtime-py's private FFI, hence the pinned wasmtime):
values of both kinds cross in both directions, a refusal becomes a result, an exception traps and re-raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import wasmtime

from spacetimedb.host.foreign import raw


class Refused(Exception):
    pass


WAT = """
(module
  (import "host" "mix" (func $mix (param i32 i64) (result i64)))
  (import "host" "boom" (func $boom))
  (func (export "call_mix") (param i32 i64) (result i64) (call $mix (local.get 0) (local.get 1)))
  (func (export "call_boom") (call $boom))
)
"""


def instance(mix: Callable[[int, int], int], boom: Callable[[], None]) -> tuple[Any, Any, list[Any]]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    keep = [
        raw.define(linker, "host", "mix", ("iI", "I"), mix, Refused, lambda exc: 77),
        raw.define(linker, "host", "boom", ("", ""), boom, Refused, lambda exc: 0),
    ]
    module = wasmtime.Module(engine, WAT)
    return store, linker.instantiate(store, module), keep


def test_values_cross_both_ways_and_refusals_become_results():
    seen = []

    def mix(a: int, b: int) -> int:
        seen.append((a, b))
        if a == 5:
            raise Refused()
        return a + b

    store, inst, _keep = instance(mix, lambda: None)
    call_mix = raw.RawFunc(store, inst.exports(store)["call_mix"], ("iI", "I"))
    assert call_mix(1, (1 << 40) + 2) == (1 << 40) + 3
    assert call_mix(0xFFFFFFFF, 1) == 0  # an i32 of all ones is -1 to the host, as wasm's bits say
    assert seen[1] == (-1, 1)
    assert call_mix(5, 0) == 77
    with pytest.raises(wasmtime.WasmtimeError, match="has type"):
        raw.RawFunc(store, inst.exports(store)["call_mix"], ("i", "i"))


def test_an_exception_traps_the_call_and_is_re_raised():
    def boom() -> None:
        raise KeyError("inside")

    store, inst, _keep = instance(lambda a, b: a + b, boom)
    call_boom = raw.RawFunc(store, inst.exports(store)["call_boom"], ("", ""))
    with pytest.raises(KeyError, match="inside"):
        call_boom()
    call_mix = raw.RawFunc(store, inst.exports(store)["call_mix"], ("iI", "I"))
    assert call_mix(2, 3) == 5  # the instance survives its trap
