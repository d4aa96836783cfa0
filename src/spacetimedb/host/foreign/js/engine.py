"""``JsEngine``: a SpacetimeDB TypeScript module (one ESM bundle) running in its own V8 isolate.

The module sees what upstream's V8 host gives it: ``TextEncoder``/``TextDecoder``, no ``Math.random``, and the
synthetic modules ``spacetime:sys@2.0``/``@2.1`` (runtime.js). Its syscalls arrive here synchronously, on the
isolate's thread, while the calling thread waits (v8.py); each goes to the ``InstanceEnv`` the engine is
attached to.

The mailbox (one ArrayBuffer shared without copies): a 64-byte header, then up to 1 MiB - 64 of payload.

    0  op          u32  the syscall, OP_APPEND / OP_PULL, or (Python → JS) the call to make
    4  status      u32  0, an errno, BUFFER_TOO_SMALL or HOST_FAILURE (the payload is then the message)
    8  args        6 x u32 (results come back in args[0])
    32 chunk       u32  payload bytes in this mailbox
    36 total       u32  payload bytes in all (more than ``chunk``: the rest follows by OP_APPEND / OP_PULL)
    40 wide        u64/i64 (a row count, a timestamp)
    64 payload

A payload larger than the mailbox travels in pieces: JS sends the leading pieces with OP_APPEND before the call;
Python keeps the tail of an answer and JS pulls it with OP_PULL. A call into the module returns its outcome
(OUT_*) and leaves its result, or its error message, in the mailbox the same way.

A scan answers with its first rows too (up to PREFETCH_BYTES, whole rows; args[1] says whether it did and
whether that was all), which runtime.js serves to the module's next advance: a point lookup crosses once.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from importlib import resources
from typing import Any

from spacetimedb.module import ModuleError
from spacetimedb.sats import ConnectionId, Identity, Timestamp

from ..abi import BufferTooSmall, HostCallError, InstanceEnv
from ..engine import ForeignPanic, ForeignUserError
from . import v8
from .bundle import BundleError, to_script
from .pool import IsolatePool, NoIsolateLeft

HEADER = 64
H_OP, H_STATUS, H_ARGS, H_CHUNK, H_TOTAL, H_WIDE = 0, 4, 8, 32, 36, 40
OP_APPEND, OP_PULL = 1, 2
ST_OK, ST_BUFFER_TOO_SMALL, ST_HOST_FAILURE = 0, 0xFFFFFFFF, 0xFFFFFFFE
CALL_LOAD, CALL_DESCRIBE, CALL_REDUCER, CALL_PROCEDURE, CALL_VIEW, CALL_VIEW_ANON = 1, 2, 3, 4, 5, 6
OUT_OK, OUT_SENDER_ERROR, OUT_PANIC = 0, 1, 2
# a module's V8 heap; past it the running call stops
DEFAULT_HEAP_LIMIT = 256 << 20

_ARGS = struct.Struct("<6I")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


def _runtime_source() -> str:
    return resources.files(__package__).joinpath("runtime.js").read_text("utf-8")


class JsEngine:
    """One instance of a JS module (``ForeignEngine``), in an isolate of its own, or from ``pool`` (a sandboxed
    worker's: made before it forbade new threads, and given back when the module is unloaded). Raises ``ModuleError`` when the bundle cannot be
    loaded: not a bundle for this host, a syntax error, an error in its top-level code, no moduleHooks."""

    def __init__(
        self,
        program: bytes,
        pool: IsolatePool | None = None,
        heap_limit_bytes: int = DEFAULT_HEAP_LIMIT,
    ) -> None:
        try:
            script = to_script(program)
        except BundleError as exc:
            raise ModuleError(f"the JS module cannot be loaded: {exc}") from None
        try:
            self._isolate = pool.take() if pool is not None else v8.Isolate()
        except NoIsolateLeft as exc:
            raise ModuleError(str(exc)) from None
        self._pool = pool
        self._syscall_id = 0
        self._heap_limit = heap_limit_bytes
        self._env: InstanceEnv | None = None
        self._incoming = bytearray()  # OP_APPEND pieces of the payload on its way here
        self._outgoing = memoryview(b"")  # what JS has yet to pull of an answer
        self._fatal: BaseException | None = None
        self._handles: list[Any] = []
        try:
            self._boot()
            self._load(script.source)
        except ForeignPanic as exc:
            self.close()
            raise ModuleError(f"the JS module failed while loading: {exc}") from None
        except BaseException:
            self.close()
            raise

    # -- setting up ------------------------------------------------------------------------------------------------

    def _keep(self, raw: Any) -> Any:
        self._handles.append(raw)
        return raw

    def _boot(self) -> None:
        isolate = self._isolate
        isolate.set_heap_limit(self._heap_limit)
        isolate.eval(_runtime_source())
        self._mailbox_handle = self._keep(isolate.eval("__stdb_mailbox"))
        self._mailbox = v8.Isolate.buffer(self._mailbox_handle)
        self._capacity = len(self._mailbox) - HEADER
        hostcall, self._syscall_id = isolate.make_syscall(self._on_syscall)
        global_object = isolate.eval("globalThis")
        key_handle = isolate.alloc_string("__stdb_hostcall")
        try:
            isolate.set_item(global_object, key_handle, hostcall)
        finally:
            for raw in (global_object, key_handle, hostcall):
                isolate.free(raw)
        self._dispatch = self._keep(isolate.eval("__stdb_boot(globalThis.__stdb_hostcall)"))
        self._undefined = self._keep(isolate.alloc_int(0, v8.T_UNDEFINED))
        self._no_args = self._keep(isolate.eval("[]"))

    def _load(self, source: str) -> None:
        try:
            factory = self._isolate.eval(source)
        except v8.JsError as exc:
            raise ModuleError(f"the JS module does not parse: {exc}") from None
        argv = self._isolate.eval("[]")
        try:
            self._isolate.array_push(argv, factory)
            self._call(CALL_LOAD, 0, b"", 0, argv)
        finally:
            self._isolate.free(argv)
            self._isolate.free(factory)

    def attach(self, env: InstanceEnv) -> None:
        self._env = env

    def close(self) -> None:
        isolate = self.__dict__.get("_isolate")
        if isolate is None:
            return
        self._isolate = None  # type: ignore[assignment]
        self._mailbox = memoryview(b"")
        isolate.drop_syscall(self._syscall_id)
        for raw in self._handles:
            isolate.free(raw)
        self._handles.clear()
        if self._pool is not None:
            self._pool.give_back(isolate)
        else:
            isolate.close()

    # -- the hooks ---------------------------------------------------------------------------------------------

    def describe(self) -> bytes:
        return self._call(CALL_DESCRIBE, 0, b"")

    def call_reducer(
        self,
        reducer_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> None:
        self._call(CALL_REDUCER, reducer_id, _context(sender, connection_id) + args, timestamp.micros)

    def call_procedure(
        self,
        procedure_id: int,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        args: bytes,
    ) -> bytes:
        return self._call(
            CALL_PROCEDURE, procedure_id, _context(sender, connection_id) + args, timestamp.micros
        )

    def call_view(self, view_id: int, sender: Identity, args: bytes) -> bytes:
        return self._call(CALL_VIEW, view_id, _context(sender, None) + args)

    def call_view_anon(self, view_id: int, args: bytes) -> bytes:
        return self._call(CALL_VIEW_ANON, view_id, args)

    def _call(self, op: int, call_id: int, payload: bytes, wide: int = 0, argv: Any = None) -> bytes:
        """Make one call into the module; its result bytes, or ``ForeignUserError`` / ``ForeignPanic``."""
        mailbox = self._mailbox
        _U32.pack_into(mailbox, H_OP, op)
        _ARGS.pack_into(mailbox, H_ARGS, call_id, 0, 0, 0, 0, 0)
        _I64.pack_into(mailbox, H_WIDE, wide)
        self._put_payload(payload)
        self._fatal = None
        self._incoming.clear()
        try:
            outcome = self._isolate.call(
                self._dispatch, self._undefined, self._no_args if argv is None else argv
            )
        except (v8.JsTerminated, v8.JsError) as exc:
            if (isinstance(exc, v8.JsTerminated) and exc.out_of_memory) or self._isolate.heap_limit_reached():
                self._isolate.recover_from_heap_limit(self._heap_limit)
                raise ForeignPanic(
                    f"the module ran out of memory (its V8 heap is limited to {self._heap_limit >> 20} MiB)"
                ) from None
            raise ForeignPanic(str(exc)) from None
        finally:
            self._outgoing = memoryview(b"")
        if self._fatal is not None:
            raise ForeignPanic(f"a syscall failed in the host: {self._fatal!r}") from self._fatal
        if outcome not in (OUT_OK, OUT_SENDER_ERROR, OUT_PANIC):
            raise ForeignPanic(f"the module's call ended without an outcome ({outcome!r})")
        data = self._take_payload()
        if outcome == OUT_OK:
            return data
        message = data.decode("utf-8", "replace")
        if outcome == OUT_SENDER_ERROR:
            raise ForeignUserError(message)
        raise ForeignPanic(message)

    # -- the mailbox, on the isolate thread -------------------------------------------------------------------

    def _put_payload(self, data: bytes | memoryview) -> None:
        mailbox, size = self._mailbox, len(data)
        chunk = min(size, self._capacity)
        mailbox[HEADER : HEADER + chunk] = data[:chunk]
        _U32.pack_into(mailbox, H_CHUNK, chunk)
        _U32.pack_into(mailbox, H_TOTAL, size)
        self._outgoing = memoryview(data)[chunk:] if chunk < size else memoryview(b"")

    def _take_payload(self) -> bytes:
        mailbox = self._mailbox
        (chunk,) = _U32.unpack_from(mailbox, H_CHUNK)
        if chunk > self._capacity:
            raise HostCallError(1, "a payload larger than the mailbox")
        data = bytes(mailbox[HEADER : HEADER + chunk])
        if self._incoming:
            data = bytes(self._incoming) + data
            self._incoming.clear()
        return data

    def _on_syscall(self) -> None:
        mailbox = self._mailbox
        (op,) = _U32.unpack_from(mailbox, H_OP)
        if op == OP_APPEND:
            (chunk,) = _U32.unpack_from(mailbox, H_CHUNK)
            self._incoming += mailbox[HEADER : HEADER + min(chunk, self._capacity)]
            return
        if op == OP_PULL:
            rest = self._outgoing
            self._put_payload(rest)
            return
        handler = _SYSCALLS.get(op)
        try:
            if handler is None:
                raise HostCallError(1, f"unknown syscall {op}")
            if self._env is None:
                raise HostCallError(2, "the module made a syscall before it was attached to a database")
            args = _ARGS.unpack_from(mailbox, H_ARGS)
            answer = handler(self, self._env, args, self._take_payload())
            _U32.pack_into(mailbox, H_STATUS, ST_OK)
            self._put_payload(answer if answer is not None else b"")
        except BufferTooSmall as exc:
            _U32.pack_into(mailbox, H_STATUS, ST_BUFFER_TOO_SMALL)
            _U32.pack_into(mailbox, H_ARGS, exc.needed)
        except HostCallError as exc:
            _U32.pack_into(mailbox, H_STATUS, exc.errno)
            self._put_payload(str(exc).encode())
        except Exception as exc:  # a fault of the host, not of the module: the call fails as a panic
            self._fatal = exc
            _U32.pack_into(mailbox, H_STATUS, ST_HOST_FAILURE)
            self._put_payload(f"host failure: {exc!r}".encode())

    def _result_u32(self, value: int) -> None:
        _U32.pack_into(self._mailbox, H_ARGS, value)

    def _result_wide(self, value: int, signed: bool = False) -> None:
        (_I64 if signed else _U64).pack_into(self._mailbox, H_WIDE, value)


def _context(sender: Identity, connection_id: ConnectionId | None) -> bytes:
    connection = connection_id.value if connection_id is not None else 0
    return sender.to_le_bytes() + connection.to_bytes(16, "little")


def _pair(data: bytes) -> tuple[bytes, bytes]:
    if len(data) < 4:
        raise HostCallError(3, "a malformed pair of byte strings")
    (first,) = _U32.unpack_from(data, 0)
    if 4 + first > len(data):
        raise HostCallError(3, "a malformed pair of byte strings")
    return data[4 : 4 + first], data[4 + first :]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# ---- the syscalls: (engine, env, u32 args, payload) → answer payload (results in args[0] / wide) -------------

Handler = Callable[[JsEngine, InstanceEnv, tuple[int, ...], bytes], bytes | None]


def _u32_result(compute: Callable[[InstanceEnv, tuple[int, ...], bytes], int]) -> Handler:
    def handler(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> None:
        engine._result_u32(compute(env, args, payload))

    return handler


def _u64_result(compute: Callable[[InstanceEnv, tuple[int, ...], bytes], int]) -> Handler:
    def handler(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> None:
        engine._result_wide(compute(env, args, payload))

    return handler


PREFETCH_BYTES = 16 << 10
PREFETCHED, EXHAUSTED = 1, 2


def _scan(open_scan: Callable[[InstanceEnv, tuple[int, ...], bytes], int]) -> Handler:
    """A scan syscall: the iterator, and its first rows (at most PREFETCH_BYTES) with it."""

    def handler(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> bytes:
        handle = open_scan(env, args, payload)
        try:
            rows, exhausted = env.iter_advance(handle, PREFETCH_BYTES)
        except BufferTooSmall:  # the first row alone is larger: the module's own buffer will grow for it
            rows, flags = b"", 0
        else:
            flags = PREFETCHED | (EXHAUSTED if exhausted else 0)
        _ARGS.pack_into(engine._mailbox, H_ARGS, handle, flags, 0, 0, 0, 0)
        return rows

    return handler


def _advance(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> bytes:
    rows, exhausted = env.iter_advance(args[0], args[1])
    engine._result_u32(1 if exhausted else 0)
    return rows


def _console_log(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> None:
    message, filename = _pair(payload)
    env.console_log(args[0], _text(message), None, _text(filename) or None, args[1])


def _start_mut_tx(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> None:
    engine._result_wide(env.procedure_start_mut_tx(), signed=True)


def _http_request(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> bytes:
    request, body = _pair(payload)
    response, response_body = env.procedure_http_request(request, body)
    return _U32.pack(len(response)) + bytes(response) + bytes(response_body)


def _schedule_immediate(engine: JsEngine, env: InstanceEnv, args: tuple[int, ...], payload: bytes) -> None:
    name, reducer_args = _pair(payload)
    env.schedule_immediate(_text(name), bytes(reducer_args))


_SYSCALLS: dict[int, Handler] = {
    10: _u32_result(lambda env, a, p: env.table_id_from_name(_text(p))),
    11: _u32_result(lambda env, a, p: env.index_id_from_name(_text(p))),
    12: _u64_result(lambda env, a, p: env.table_row_count(a[0])),
    13: _scan(lambda env, a, p: env.table_scan(a[0])),
    14: _scan(lambda env, a, p: env.index_scan_point(a[0], p)),
    15: _scan(lambda env, a, p: env.index_scan_range(a[0], p, a[1], a[2], a[3], a[4])),
    16: _advance,
    17: lambda engine, env, a, p: env.iter_close(a[0]),
    18: lambda engine, env, a, p: env.insert(a[0], p),
    19: lambda engine, env, a, p: env.update(a[0], a[1], p),
    20: _u32_result(lambda env, a, p: env.delete_by_index_scan_point(a[0], p)),
    21: _u32_result(lambda env, a, p: env.delete_by_index_scan_range(a[0], p, a[1], a[2], a[3], a[4])),
    22: _u32_result(lambda env, a, p: env.delete_all_by_eq(a[0], p)),
    23: _u64_result(lambda env, a, p: env.clear(a[0])),
    24: _schedule_immediate,
    25: _console_log,
    26: _u32_result(lambda env, a, p: env.console_timer_start(_text(p))),
    27: lambda engine, env, a, p: env.console_timer_end(a[0]),
    28: lambda engine, env, a, p: env.identity(),
    29: lambda engine, env, a, p: env.get_jwt_payload(p),
    30: _start_mut_tx,
    31: lambda engine, env, a, p: env.procedure_commit_mut_tx(),
    32: lambda engine, env, a, p: env.procedure_abort_mut_tx(),
    33: _http_request,
}
