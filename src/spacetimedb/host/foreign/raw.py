"""Calls across the WASM boundary without wasmtime-py's per-call type checks.

wasmtime-py converts every argument and result through ``Val`` objects, re-reading the function's type each call:
about 0.7 ms per ``__call_reducer__`` and tens of microseconds per syscall, most of a small reducer's cost. The
C API's *unchecked* calls take the raw values instead (``wasmtime_func_call_unchecked``,
``wasmtime_linker_define_func_unchecked``); the types are checked once, when the function is looked up or
defined. This file uses wasmtime-py's private FFI module for that, so wasmtime is pinned (pyproject) and
``tests/host/foreign/test_wasm_raw.py`` guards what it relies on.

Signatures are strings of value kinds: ``i`` an i32, ``I`` an i64 (all the ABI uses).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings as ffi  # the unchecked C calls (module docstring)
from wasmtime import _func  # where wasmtime-py keeps a host function's exception
from wasmtime._ffi import dll as wasmtime_dll  # the library itself, to declare a call of our own

Signature = tuple[str, str]  # (parameter kinds, result kinds)

_VAL_TYPES = {"i": wasmtime.ValType.i32, "I": wasmtime.ValType.i64}
_WRAP = {"i": 1 << 32, "I": 1 << 64}
_SIGNED_MAX = {"i": (1 << 31) - 1, "I": (1 << 63) - 1}
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
# the C callback type of an unchecked host function, with the raw values as a plain address (so ctypes builds no
# pointer object per call), and the define function declared to take it
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)
_DEFINE_UNCHECKED = wasmtime_dll["wasmtime_linker_define_func_unchecked"]
_DEFINE_UNCHECKED.restype = ctypes.POINTER(ffi.wasmtime_error_t)
_DEFINE_UNCHECKED.argtypes = [
    ctypes.POINTER(ffi.wasmtime_linker_t),
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasm_functype_t),
    _CALLBACK,
    ctypes.c_void_p,
    ctypes.CFUNCTYPE(None, ctypes.c_void_p),
]


def func_type(signature: Signature) -> wasmtime.FuncType:
    params, results = signature
    return wasmtime.FuncType([_VAL_TYPES[k]() for k in params], [_VAL_TYPES[k]() for k in results])


def define(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    signature: Signature,
    func: Callable[..., Any],
    failure: type[BaseException],
    result_of_failure: Callable[[BaseException], int],
) -> Any:
    """Define the import ``module::name`` as ``func(*ints) -> int | None`` (None: 0); returns the C callback,
    which the caller must keep alive as long as the linker's instances run. A ``failure`` raised by ``func`` is
    returned as ``result_of_failure(exc)``; any other exception traps the call into the module, and the call
    re-raises it (as for wasmtime-py's own host functions)."""
    params, results = signature
    slot = ctypes.sizeof(ffi.wasmtime_val_raw_t)
    layout = struct.Struct("<" + "".join(f"i{slot - 4}x" if k == "i" else f"q{slot - 8}x" for k in params))
    result_kind = results[0] if results else None
    result_type = ctypes.c_int32 if result_kind == "i" else ctypes.c_int64
    wrap, signed_max = _WRAP.get(result_kind or "i", 0), _SIGNED_MAX.get(result_kind or "i", 0)
    string_at = ctypes.string_at

    def callback(_env: Any, _caller: Any, values: int, _count: int) -> int:
        try:
            try:
                result = func(*layout.unpack(string_at(values, layout.size))) if params else func()
            except failure as exc:
                result = result_of_failure(exc)
            if result_kind is not None:
                result = (result or 0) % wrap
                result_type.from_address(values).value = result - wrap if result > signed_max else result
            return 0
        except BaseException as exc:  # re-raised by the call that entered the module
            _func.LAST_EXCEPTION = exc  # type: ignore[assignment, unused-ignore]  # wasmtime-py re-raises any exception kept here (unused: a build without wasmtime)
            trap = wasmtime.Trap("python exception")._consume()
            return ctypes.cast(trap, ctypes.c_void_p).value or 0

    c_callback = _CALLBACK(callback)
    module_bytes, name_bytes = module.encode(), name.encode()
    ty = func_type(signature)  # held until the call returns: passing only ty.ptr() would free it first
    error = _DEFINE_UNCHECKED(
        linker.ptr(),
        ctypes.create_string_buffer(module_bytes),
        len(module_bytes),
        ctypes.create_string_buffer(name_bytes),
        len(name_bytes),
        ty.ptr(),
        c_callback,
        None,
        _NO_FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    return c_callback


class RawFunc:
    """An exported function called with raw values, its type checked once against ``signature``. Arguments are
    unsigned (their bits are what the module sees)."""

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func, signature: Signature) -> None:
        expected = func_type(signature)
        actual = func.type(store)
        if [str(t) for t in actual.params] != [str(t) for t in expected.params] or [
            str(t) for t in actual.results
        ] != [str(t) for t in expected.results]:
            raise wasmtime.WasmtimeError(f"the export has type {actual.params} -> {actual.results}")
        self._store = store
        self._func = func
        params, self._results = signature
        self._values = (ffi.wasmtime_val_raw_t * max(len(params), len(self._results), 1))()
        # each raw value is a 16-byte union: an i32 or i64 in its first bytes, little-endian
        slot = ctypes.sizeof(ffi.wasmtime_val_raw_t)
        self._layout = struct.Struct(
            "<" + "".join(f"I{slot - 4}x" if k == "i" else f"Q{slot - 8}x" for k in params)
        )
        # what every call passes: fixed for the store's and the function's lifetimes
        self._context = store._context()
        self._func_ref = ctypes.byref(func._func)
        self._result = ctypes.c_int32.from_buffer(self._values) if self._results == "i" else None

    def __call__(self, *args: int) -> int | None:
        """Call the function; a trap raises ``wasmtime.Trap`` unless a host function's exception caused it,
        which is raised instead (as wasmtime-py's own calls do)."""
        values = self._values
        self._layout.pack_into(values, 0, *args)
        # a fresh out-pointer per call: the C call only writes it on a trap, and an exception arriving between
        # the call and reading it (the watchdog's) must not leave the next call a stale trap
        trap_ptr = _TrapPointer()
        error = _CALL_UNCHECKED(self._context, self._func_ref, values, len(values), ctypes.byref(trap_ptr))
        if trap_ptr:
            trap = wasmtime.Trap._from_ptr(trap_ptr)
            _func.maybe_raise_last_exn()
            raise trap
        if error:
            _func.maybe_raise_last_exn()
            raise wasmtime.WasmtimeError._from_ptr(error)
        if self._result is not None:
            return int(self._result.value)
        return int(values[0].i64) if self._results else None


_CALL_UNCHECKED = ffi.wasmtime_func_call_unchecked
_TrapPointer = ctypes.POINTER(ffi.wasm_trap_t)
