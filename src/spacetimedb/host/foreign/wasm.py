"""The WASM engine: modules built by SpacetimeDB's Rust and C# toolchains, run in wasmtime.

The module imports SpacetimeDB's ABI (``crates/bindings-sys/src/lib.rs``: modules ``spacetime_10.0`` to
``spacetime_10.5``); each import is a thin adapter from pointers and lengths in the module's linear memory to
``InstanceEnv``. Larger values move through *bytes sources* (host → module: reducer arguments, JWT payloads),
read with ``bytes_source_read``, and *bytes sinks* (module → host: the module def, error messages), written with
``bytes_sink_write``.

Instantiation follows SpacetimeDB's order: ``_initialize`` (C# NativeAOT-LLVM), every ``__preinit__*`` export
by name, then ``__setup__(error_sink)``. Calls go through ``__describe_module__`` and ``__call_reducer__``.

Safety: the module's memory is capped (``MEMORY_LIMIT_BYTES``; a failed ``memory.grow`` is the module's
problem), and a call that runs past the host's time budget is stopped by epoch interruption, which the host's
watchdog triggers (``watchdog.stop_on_timeout``); the call then raises ``ReducerTimeout`` like a Python reducer.
A pointer or length outside the module's memory traps the call (as SpacetimeDB does), never the host.
Compilation uses no threads (the worker forbids new ones before it loads a module) and a small virtual
memory reservation (the worker runs under ``RLIMIT_AS``).
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import wasmtime

from spacetimedb.module import ModuleError
from spacetimedb.sats import ConnectionId, Identity, Timestamp

from ..watchdog import ReducerTimeout, stop_on_timeout
from . import abi, raw
from .abi import BufferTooSmall, HostCallError, InstanceEnv
from .engine import ForeignPanic, ForeignUserError

MEMORY_LIMIT_BYTES = 256 << 20
_SLEEP_STEP_SECONDS = 0.05
# entries of the module's function tables (a hostile module could grow one without bound otherwise)
_TABLE_ELEMENTS_LIMIT = 1 << 20
# reserved up front (virtual memory only), so that growing to the limit never moves and copies the memory
_MAX_WASM_STACK = 1 << 20

# __call_reducer__(id, sender_0..3, conn_id_0..1, timestamp, args_source, error_sink) -> i32 (and
# __call_procedure__, whose sink gets its result)
_CALL_REDUCER = ("iIIIIIIIii", "i")
# __call_view__(id, sender_0..3, args_source, result_sink) -> i32; __call_view_anon__(id, args_source, result_sink)
_CALL_VIEW = ("iIIIIii", "i")
_CALL_VIEW_ANON = ("iii", "i")
_CALL_EXPORTS = {
    "__call_reducer__": _CALL_REDUCER,
    "__call_procedure__": _CALL_REDUCER,
    "__call_view__": _CALL_VIEW,
    "__call_view_anon__": _CALL_VIEW_ANON,
}
_VIEW_ROW_DATA = 0  # ViewResultHeader::RowData
_VIEW_HEADER_FIRST = 2  # a view's return code: the result starts with its ViewResultHeader
_U32_MASK = 0xFFFFFFFF
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_INVALID_SOURCE = 0


class WasmOutOfBounds(Exception):
    """A syscall was given a pointer or length outside the module's memory."""


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.parallel_compilation = False
    config.epoch_interruption = True
    config.memory_reservation = MEMORY_LIMIT_BYTES
    config.memory_may_move = False
    config.memory_guard_size = 0
    config.memory_reservation_for_growth = 0
    config.max_wasm_stack = _MAX_WASM_STACK
    config.cranelift_opt_level = "speed"
    return wasmtime.Engine(config)


class WasmEngine:
    """One instance of a WASM module (see the module docstring)."""

    def __init__(self, program: bytes, memory_limit: int = MEMORY_LIMIT_BYTES) -> None:
        self._engine = _engine()
        try:
            module = wasmtime.Module(self._engine, program)
        except wasmtime.WasmtimeError as exc:
            raise ModuleError(f"the program is not a valid WebAssembly module: {_first_line(exc)}") from None
        self._check_imports(module)
        self._store = wasmtime.Store(self._engine)
        self._store.set_limits(memory_size=memory_limit, table_elements=_TABLE_ELEMENTS_LIMIT)
        self._memory_limit = memory_limit
        self._store.set_epoch_deadline(1)
        self.env: InstanceEnv | None = None
        self._sources: dict[int, bytearray] = {}
        self._sinks: dict[int, bytearray] = {}
        self._next_id = 1
        self._thread = 0  # the thread running a call into the module, 0 between calls
        self._interrupted = False
        self._closed = False
        linker = wasmtime.Linker(self._engine)
        self._callbacks = [
            raw.define(linker, module_name, name, signature, func, HostCallError, _errno_of)
            for (module_name, name), (signature, func) in self._imports().items()
        ]
        stop_on_timeout(self)
        try:
            self._instance = linker.instantiate(self._store, module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise ModuleError(f"the WebAssembly module does not instantiate: {_first_line(exc)}") from None
        exports = self._instance.exports(self._store)
        memory = exports.get("memory") if "memory" in [e.name for e in module.exports] else None
        if not isinstance(memory, wasmtime.Memory):
            raise ModuleError("the WebAssembly module exports no `memory`")
        self._memory = memory
        self._memory_base = -1
        self._memory_size = 0
        self._mem = memoryview(b"")
        self._map_memory()
        self._exports = {e.name for e in module.exports}
        for required in ("__describe_module__", "__call_reducer__"):
            if required not in self._exports:
                raise ModuleError(
                    f"the WebAssembly module does not export `{required}`: it is not a SpacetimeDB module"
                )
        self._raw_funcs: dict[str, raw.RawFunc] = {}
        for export, signature in _CALL_EXPORTS.items():
            if export in self._exports:
                try:
                    self._raw_funcs[export] = raw.RawFunc(self._store, self._export(export), signature)
                except wasmtime.WasmtimeError as exc:
                    raise ModuleError(
                        f"the WebAssembly module's `{export}` has the wrong type: {exc}"
                    ) from None
        self._initialize()

    # -- imports -------------------------------------------------------------------------------------------------

    @staticmethod
    def _check_imports(module: wasmtime.Module) -> None:
        unknown = [
            f"{i.module}::{i.name}" for i in module.imports if (i.module, i.name or "") not in _SIGNATURES
        ]
        if unknown:
            raise ModuleError(
                f"the WebAssembly module imports {', '.join(unknown)}, which this server does not provide "
                "(it serves SpacetimeDB's ABI spacetime_10.0 to spacetime_10.5)"
            )

    def _imports(self) -> dict[tuple[str, str], tuple[tuple[str, str], Callable[..., Any]]]:
        return {
            key: (signature, getattr(self, f"_sys_{key[1]}")) for key, (signature, _) in _SIGNATURES.items()
        }

    # -- memory ----------------------------------------------------------------------------------------------------

    def _offset(self, ptr: int, length: int) -> int:
        """``ptr`` as an offset into ``self._mem``, after checking that ``length`` bytes there lie within the
        module's current memory."""
        ptr &= 0xFFFFFFFF
        if ptr + (length & 0xFFFFFFFF) > self._memory_size:
            self._map_memory()  # memory only grows: look again
            if ptr + (length & 0xFFFFFFFF) > self._memory_size:
                raise WasmOutOfBounds(f"{length & 0xFFFFFFFF} bytes at {ptr} lie outside the module's memory")
        return ptr

    def _map_memory(self) -> None:
        """A view of the module's whole linear memory, up to its limit (it is reserved up front and never moves;
        only the first ``_memory_size`` bytes are ever touched)."""
        base = ctypes.cast(self._memory.data_ptr(self._store), ctypes.c_void_p).value or 0
        if base != self._memory_base:
            self._memory_base = base
            self._mem = memoryview((ctypes.c_ubyte * self._memory_limit).from_address(base)).cast("B")
        self._memory_size = self._memory.data_len(self._store)

    def _base(self, ptr: int, length: int) -> int:
        """The host address of ``length`` bytes at ``ptr`` (checked as ``_offset`` does)."""
        return self._memory_base + self._offset(ptr, length)

    # the accessors check bounds inline and call ``_offset`` only when memory may have grown (or the access is bad)

    def _read(self, ptr: int, length: int) -> bytes:
        ptr &= _U32_MASK
        length &= _U32_MASK
        if ptr + length > self._memory_size:
            self._offset(ptr, length)
        return bytes(self._mem[ptr : ptr + length])

    def _write(self, ptr: int, data: bytes) -> None:
        ptr &= _U32_MASK
        if ptr + len(data) > self._memory_size:
            self._offset(ptr, len(data))
        self._mem[ptr : ptr + len(data)] = data

    def _read_u32(self, ptr: int) -> int:
        ptr &= _U32_MASK
        if ptr + 4 > self._memory_size:
            self._offset(ptr, 4)
        return int(_U32.unpack_from(self._mem, ptr)[0])

    def _write_u32(self, ptr: int, value: int) -> None:
        ptr &= _U32_MASK
        if ptr + 4 > self._memory_size:
            self._offset(ptr, 4)
        _U32.pack_into(self._mem, ptr, value & _U32_MASK)

    def _write_u64(self, ptr: int, value: int) -> None:
        ptr &= _U32_MASK
        if ptr + 8 > self._memory_size:
            self._offset(ptr, 8)
        _U64.pack_into(self._mem, ptr, value & 0xFFFFFFFFFFFFFFFF)

    def _text(self, ptr: int, length: int) -> str:
        return self._read(ptr, length).decode("utf-8", "replace")

    def _env(self) -> InstanceEnv:
        if self.env is None:
            raise HostCallError(abi.NOT_IN_TRANSACTION, "the module is not attached to a database yet")
        return self.env

    # -- bytes sources and sinks --------------------------------------------------------------------------------

    def _new_source(self, data: bytes) -> int:
        if not data:
            return _INVALID_SOURCE
        source = self._next_id
        self._next_id += 1
        self._sources[source] = bytearray(data)
        return source

    def _new_sink(self) -> int:
        sink = self._next_id
        self._next_id += 1
        self._sinks[sink] = bytearray()
        return sink

    # -- the syscalls --------------------------------------------------------------------------------------------
    # Each returns its ABI result (None: 0, success); a HostCallError becomes its errno (``raw.define``); any other
    # exception (an out-of-bounds pointer, the time budget) traps the call.

    def _sys_table_id_from_name(self, ptr: int, length: int, out: int) -> None:
        self._write_u32(out, self._env().table_id_from_name(self._text(ptr, length)))

    def _sys_index_id_from_name(self, ptr: int, length: int, out: int) -> None:
        self._write_u32(out, self._env().index_id_from_name(self._text(ptr, length)))

    def _sys_datastore_table_row_count(self, table_id: int, out: int) -> None:
        self._write_u64(out, self._env().table_row_count(table_id & _U32_MASK))

    def _sys_datastore_table_scan_bsatn(self, table_id: int, out: int) -> None:
        self._write_u32(out, self._env().table_scan(table_id & _U32_MASK))

    def _range_call(self, call: Callable[..., int], index_id: int, args: tuple[int, ...]) -> None:
        """A range syscall: ``args`` are (prefix ptr, prefix len, prefix elems, start ptr, start len, end ptr,
        end len, out); the three byte strings go to ``call`` as one buffer and their lengths."""
        p_ptr, p_len, elems, s_ptr, s_len, e_ptr, e_len, out = args
        prefix, start, end = self._read(p_ptr, p_len), self._read(s_ptr, s_len), self._read(e_ptr, e_len)
        buf = prefix + start + end
        self._write_u32(
            out, call(index_id & _U32_MASK, buf, len(prefix), elems & 0xFFFF, len(start), len(end))
        )

    def _sys_datastore_index_scan_range_bsatn(self, index_id: int, *args: int) -> None:
        self._range_call(self._env().index_scan_range, index_id, args)

    _sys_datastore_btree_scan_bsatn = _sys_datastore_index_scan_range_bsatn

    def _sys_datastore_delete_by_index_scan_range_bsatn(self, index_id: int, *args: int) -> None:
        self._range_call(self._env().delete_by_index_scan_range, index_id, args)

    _sys_datastore_delete_by_btree_scan_bsatn = _sys_datastore_delete_by_index_scan_range_bsatn

    def _sys_datastore_index_scan_point_bsatn(self, index_id: int, ptr: int, length: int, out: int) -> None:
        self._write_u32(out, self._env().index_scan_point(index_id & _U32_MASK, self._read(ptr, length)))

    def _sys_datastore_delete_by_index_scan_point_bsatn(
        self, index_id: int, ptr: int, length: int, out: int
    ) -> None:
        self._write_u32(
            out, self._env().delete_by_index_scan_point(index_id & _U32_MASK, self._read(ptr, length))
        )

    def _sys_datastore_delete_all_by_eq_bsatn(self, table_id: int, ptr: int, length: int, out: int) -> None:
        self._write_u32(out, self._env().delete_all_by_eq(table_id & _U32_MASK, self._read(ptr, length)))

    def _sys_datastore_clear(self, table_id: int, out: int) -> None:
        self._write_u64(out, self._env().clear(table_id & _U32_MASK))

    def _sys_row_iter_bsatn_advance(self, handle: int, buf_ptr: int, len_ptr: int) -> int:
        capacity = self._read_u32(len_ptr)
        self._base(buf_ptr, capacity)  # the whole buffer must lie in memory
        try:
            rows, exhausted = self._env().iter_advance(handle & _U32_MASK, capacity)
        except BufferTooSmall as exc:
            self._write_u32(len_ptr, exc.needed)
            return abi.BUFFER_TOO_SMALL
        self._write(buf_ptr, rows)
        self._write_u32(len_ptr, len(rows))
        return -1 if exhausted else 0

    def _sys_row_iter_bsatn_close(self, handle: int) -> None:
        self._env().iter_close(handle & _U32_MASK)

    def _generated_writeback(self, row_ptr: int, len_ptr: int, write: Callable[[bytes], bytes]) -> None:
        generated = write(self._read(row_ptr, self._read_u32(len_ptr)))
        self._write(row_ptr, generated)
        self._write_u32(len_ptr, len(generated))

    def _sys_datastore_insert_bsatn(self, table_id: int, row_ptr: int, len_ptr: int) -> None:
        env = self._env()
        self._generated_writeback(row_ptr, len_ptr, lambda row: env.insert(table_id & _U32_MASK, row))

    def _sys_datastore_update_bsatn(self, table_id: int, index_id: int, row_ptr: int, len_ptr: int) -> None:
        env = self._env()
        self._generated_writeback(
            row_ptr, len_ptr, lambda row: env.update(table_id & _U32_MASK, index_id & _U32_MASK, row)
        )

    def _sys_bytes_sink_write(self, sink: int, buf_ptr: int, len_ptr: int) -> None:
        target = self._sinks.get(sink & _U32_MASK)
        if target is None:
            raise HostCallError(abi.NO_SUCH_BYTES, f"sink {sink}")
        target += self._read(buf_ptr, self._read_u32(len_ptr))

    def _sys_bytes_source_read(self, source: int, buf_ptr: int, len_ptr: int) -> int:
        data = self._sources.get(source & _U32_MASK)
        if data is None:
            return abi.NO_SUCH_BYTES
        capacity = self._read_u32(len_ptr)
        self._base(buf_ptr, capacity)
        chunk = bytes(data[:capacity])
        del data[:capacity]
        self._write(buf_ptr, chunk)
        self._write_u32(len_ptr, len(chunk))
        if not data:
            del self._sources[source & _U32_MASK]
            return -1
        return 0

    def _sys_bytes_source_remaining_length(self, source: int, out: int) -> int:
        data = self._sources.get(source & _U32_MASK)
        if data is None:
            return -1
        self._write_u32(out, len(data))
        return 0

    def _sys_console_log(
        self, level: int, t_ptr: int, t_len: int, f_ptr: int, f_len: int, line: int, m_ptr: int, m_len: int
    ) -> None:
        target = self._text(t_ptr, t_len) if t_len else None
        filename = self._text(f_ptr, f_len) if f_len else None
        message = self._text(m_ptr, m_len)
        if self.env is not None:
            self.env.console_log(level & 0xFF, message, target, filename, line & _U32_MASK)

    def _sys_console_timer_start(self, ptr: int, length: int) -> int:
        name = self._text(ptr, length)
        return self.env.console_timer_start(name) if self.env is not None else 0

    def _sys_console_timer_end(self, timer: int) -> None:
        self._env().console_timer_end(timer & _U32_MASK)

    def _sys_identity(self, out: int) -> None:
        self._write(out, self.env.identity() if self.env is not None else bytes(32))

    def _sys_get_jwt(self, conn_ptr: int, out: int) -> None:
        payload = self._env().get_jwt_payload(self._read(conn_ptr, 16))
        self._write_u32(out, self._new_source(payload))

    def _sys_volatile_nonatomic_schedule_immediate(
        self, name: int, name_len: int, args: int, args_len: int
    ) -> None:
        reducer = self._read(name, name_len).decode("utf-8", errors="replace")
        try:
            self._env().schedule_immediate(reducer, self._read(args, args_len))
        except HostCallError as exc:  # the import returns nothing to carry an errno: the call traps instead
            raise RuntimeError(str(exc)) from None

    def _sys_procedure_sleep_until(self, wake_at: int) -> int:
        """Sleep until ``wake_at`` (microseconds since the epoch), in short steps so that the time budget can
        still stop the procedure; the time it woke."""
        while (left := wake_at - Timestamp.now().micros) > 0:
            time.sleep(min(left / 1e6, _SLEEP_STEP_SECONDS))
        return int(Timestamp.now().micros)

    def _sys_procedure_start_mut_tx(self, out: int) -> None:
        self._write_u64(out, self._env().procedure_start_mut_tx())

    def _sys_procedure_commit_mut_tx(self) -> None:
        self._env().procedure_commit_mut_tx()

    def _sys_procedure_abort_mut_tx(self) -> None:
        self._env().procedure_abort_mut_tx()

    def _sys_procedure_http_request(
        self, req_ptr: int, req_len: int, body_ptr: int, body_len: int, out: int
    ) -> int:
        request, body = self._read(req_ptr, req_len), self._read(body_ptr, body_len)
        try:
            response, response_body = self._env().procedure_http_request(request, body)
        except HostCallError as exc:
            if exc.errno != abi.HTTP_ERROR:
                raise
            self._write_u32(out, self._new_source(exc.payload))
            return abi.HTTP_ERROR
        self._write_u32(out, self._new_source(response))
        self._write_u32(out + 4, self._new_source(response_body))
        return 0

    # -- calling the module ---------------------------------------------------------------------------------------

    def _export(self, name: str) -> wasmtime.Func:
        func = self._instance.exports(self._store)[name]
        assert isinstance(func, wasmtime.Func)
        return func

    def _call(self, what: str, func: wasmtime.Func | raw.RawFunc, *args: Any) -> Any:
        if self._closed:
            raise ForeignPanic("the module was unloaded")
        if self._interrupted:  # the epoch moved past the deadline: set a new one
            self._store.set_epoch_deadline(1)
            self._interrupted = False
        self._thread = threading.get_ident()
        try:
            if isinstance(func, raw.RawFunc):
                return func(*args)
            return func(self._store, *args)
        except wasmtime.Trap as exc:
            if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise ReducerTimeout() from None
            raise ForeignPanic(f"the module trapped in {what}: {_first_line(exc)}") from None
        except WasmOutOfBounds as exc:
            raise ForeignPanic(f"the module passed a bad pointer to a syscall in {what}: {exc}") from None
        except wasmtime.WasmtimeError as exc:
            raise ForeignPanic(f"the module failed in {what}: {_first_line(exc)}") from None
        finally:
            self._thread = 0
            self._sources.clear()

    def interrupt(self, thread_id: int) -> None:
        """Stop the module's call in progress if it runs on ``thread_id`` (the watchdog calls this)."""
        if self._thread == thread_id and thread_id:
            self._interrupted = True
            self._engine.increment_epoch()

    def _initialize(self) -> None:
        if "_initialize" in self._exports:
            self._call("_initialize", self._export("_initialize"))
        for name in sorted(n for n in self._exports if n.startswith("__preinit__")):
            self._call(name, self._export(name))
        if "__setup__" in self._exports:
            sink = self._new_sink()
            code = self._call("__setup__", self._export("__setup__"), sink)
            self._check_code("__setup__", code, self._sinks.pop(sink))

    @staticmethod
    def _check_code(what: str, code: int, error: bytes | bytearray) -> None:
        if code == 0:
            return
        message = bytes(error).decode("utf-8", "replace")
        if code == abi.HOST_CALL_FAILURE:
            raise ForeignUserError(message or f"{what} failed")
        raise ForeignPanic(f"{what} returned the unknown code {code}")

    def attach(self, env: InstanceEnv) -> None:
        self.env = env

    def describe(self) -> bytes:
        sink = self._new_sink()
        try:
            self._call("__describe_module__", self._export("__describe_module__"), sink)
            return bytes(self._sinks[sink])
        finally:
            self._sinks.pop(sink, None)

    def call_reducer(
        self,
        reducer_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> None:
        code, error = self._call_in_context(
            "__call_reducer__", reducer_id, sender, connection_id, timestamp, args
        )
        self._check_code("the reducer", code, error)

    def call_procedure(
        self,
        procedure_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> bytes:
        code, result = self._call_in_context(
            "__call_procedure__", procedure_id, sender, connection_id, timestamp, args
        )
        self._check_code("the procedure", code, result)
        return result

    def call_view(self, view_id: int, sender: Identity, args: bytes) -> bytes:
        return self._view(self._call_with_sink("__call_view__", view_id, sender, args), view_id)

    def call_view_anon(self, view_id: int, args: bytes) -> bytes:
        return self._view(self._call_with_sink("__call_view_anon__", view_id, None, args), view_id)

    def _call_in_context(
        self,
        export: str,
        call_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> tuple[int, bytes]:
        """A reducer's or procedure's export: the caller, its connection id's two words and the time go first."""
        c0, c1 = struct.unpack("<2Q", (connection_id or ConnectionId(0)).to_le_bytes())
        return self._call_with_sink(export, call_id, sender, c0, c1, timestamp.micros, args)

    def _call_with_sink(
        self, export: str, call_id: int, sender: Identity | None, *rest: Any
    ) -> tuple[int, bytes]:
        """Call ``export(call_id, [sender's four words], *rest[:-1], args source, sink)``, the last of ``rest``
        being the argument bytes: (its return code, what it wrote to the sink)."""
        func = self._raw_funcs.get(export)
        if func is None:
            raise ForeignPanic(f"the module does not export `{export}`, which its module def needs")
        words = () if sender is None else struct.unpack("<4Q", sender.to_le_bytes())
        *values, args = rest
        sink = self._new_sink()
        try:
            code = self._call(export, func, call_id, *words, *values, self._new_source(args), sink)
            return code, bytes(self._sinks[sink])
        finally:
            self._sinks.pop(sink, None)

    def _view(self, outcome: tuple[int, bytes], view_id: int) -> bytes:
        """A view's result, header first (code 0 gives bare rows, code 2 a header already)."""
        code, result = outcome
        if code == 0:
            return bytes([_VIEW_ROW_DATA]) + result
        if code == _VIEW_HEADER_FIRST:
            return result
        self._check_code(f"view {view_id}", code, result)
        raise ForeignPanic(f"view {view_id} returned the unknown code {code}")

    def close(self) -> None:
        self._closed = True
        self.env = None
        self._sources.clear()
        self._sinks.clear()


def _errno_of(exc: BaseException) -> int:
    assert isinstance(exc, HostCallError)
    return exc.errno


def _first_line(exc: BaseException) -> str:
    """What wasmtime says went wrong: the cause of a trap (``wasm trap: ...``), else the first line."""
    text = str(exc).strip()
    if "Caused by:" in text:
        text = text.split("Caused by:", 1)[1].strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


# (module, name) -> ((param kinds, result kinds), version): "i" is i32, "I" is i64
_SIGNATURES: dict[tuple[str, str], tuple[tuple[str, str], str]] = {
    ("spacetime_10.0", "table_id_from_name"): (("iii", "i"), "10.0"),
    ("spacetime_10.0", "index_id_from_name"): (("iii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_table_row_count"): (("ii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_table_scan_bsatn"): (("ii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_index_scan_range_bsatn"): (("iiiiiiiii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_btree_scan_bsatn"): (("iiiiiiiii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_delete_by_index_scan_range_bsatn"): (("iiiiiiiii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_delete_by_btree_scan_bsatn"): (("iiiiiiiii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_delete_all_by_eq_bsatn"): (("iiii", "i"), "10.0"),
    ("spacetime_10.0", "row_iter_bsatn_advance"): (("iii", "i"), "10.0"),
    ("spacetime_10.0", "row_iter_bsatn_close"): (("i", "i"), "10.0"),
    ("spacetime_10.0", "datastore_insert_bsatn"): (("iii", "i"), "10.0"),
    ("spacetime_10.0", "datastore_update_bsatn"): (("iiii", "i"), "10.0"),
    ("spacetime_10.0", "volatile_nonatomic_schedule_immediate"): (("iiii", ""), "10.0"),
    ("spacetime_10.0", "bytes_sink_write"): (("iii", "i"), "10.0"),
    ("spacetime_10.0", "bytes_source_read"): (("iii", "i"), "10.0"),
    ("spacetime_10.0", "console_log"): (("iiiiiiii", ""), "10.0"),
    ("spacetime_10.0", "console_timer_start"): (("ii", "i"), "10.0"),
    ("spacetime_10.0", "console_timer_end"): (("i", "i"), "10.0"),
    ("spacetime_10.0", "identity"): (("i", ""), "10.0"),
    ("spacetime_10.1", "bytes_source_remaining_length"): (("ii", "i"), "10.1"),
    ("spacetime_10.2", "get_jwt"): (("ii", "i"), "10.2"),
    ("spacetime_10.3", "procedure_sleep_until"): (("I", "I"), "10.3"),
    ("spacetime_10.3", "procedure_start_mut_tx"): (("i", "i"), "10.3"),
    ("spacetime_10.3", "procedure_commit_mut_tx"): (("", "i"), "10.3"),
    ("spacetime_10.3", "procedure_abort_mut_tx"): (("", "i"), "10.3"),
    ("spacetime_10.3", "procedure_http_request"): (("iiiii", "i"), "10.3"),
    ("spacetime_10.4", "datastore_index_scan_point_bsatn"): (("iiii", "i"), "10.4"),
    ("spacetime_10.4", "datastore_delete_by_index_scan_point_bsatn"): (("iiii", "i"), "10.4"),
    ("spacetime_10.5", "datastore_clear"): (("ii", "i"), "10.5"),
}


def wasm_engine(program: bytes) -> WasmEngine:
    return WasmEngine(program)
