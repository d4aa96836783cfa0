"""A thin, synchronous driver for V8 through the native library of PyPI ``mini-racer`` (pinned, see
pyproject.toml).

mini-racer's Python API runs every evaluation through an asyncio loop on a thread of its own and offers only
*asynchronous* JS→Python callbacks. A SpacetimeDB module needs synchronous syscalls, so this driver talks to
``libmini_racer`` directly, through the ctypes prototypes mini-racer declares (``init_mini_racer``):

- each ``Isolate`` is one mini-racer context (a V8 isolate with a message-loop thread of its own, started by
  ``mr_init_context``);
- a task (``mr_eval``, ``mr_call_function``) is posted to that thread and reports its result through the
  context's callback, on that thread; the calling thread waits on an ``Event``;
- a JS function made by ``mr_make_js_callback`` calls the same callback, on the isolate thread, *while JS is
  blocked in the call* (mini-racer: "all work on the Isolate is blocked until this callback returns"). The
  driver runs the syscall handler right there, so the JS caller sees the answer synchronously. The handler must
  not call back into the library (the isolate thread is busy running it); the value handle the library passes
  it is freed after the task ends, from the waiting thread.

The private names used here (``py_mini_racer._dll``: ``init_mini_racer``, ``MR_CALLBACK``, ``_RawValue``, and the
``mr_*`` functions' semantics) are guarded by tests/foreign/test_js_v8_driver.py, so a mini-racer upgrade that
changes them fails there first.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from py_mini_racer import _dll as mr_dll

# value types of mini_racer.cc (py_mini_racer._objects._MiniRacerTypes)
T_NULL = 1
T_BOOL = 2
T_INTEGER = 3
T_DOUBLE = 4
T_STRING = 5
T_UNDEFINED = 11
T_FUNCTION = 100
T_ARRAY_BUFFER = 102
T_EXECUTE_EXCEPTION = 200
T_PARSE_EXCEPTION = 201
T_OOM_EXCEPTION = 202
T_TIMEOUT_EXCEPTION = 203
T_TERMINATED_EXCEPTION = 204

# callback id 0 is every task's completion; each syscall function has an id of its own (``make_syscall``)
_TASK_DONE = 0
# how often a waiting thread returns to Python, so the reducer watchdog's exception reaches it
_WAIT_SLICE_SECONDS = 0.02
V8_FLAGS = ("--single-threaded",)


class JsError(Exception):
    """A task ended with a JS exception (``kind`` is the mini-racer type: execute, parse)."""

    def __init__(self, message: str, kind: int) -> None:
        super().__init__(message)
        self.kind = kind


class JsTerminated(Exception):
    """A task was stopped: by ``cancel`` (the time budget) or by the heap limit (``out_of_memory``)."""

    def __init__(self, message: str, out_of_memory: bool) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


_dll: Any = None
_dll_lock = threading.Lock()


def library() -> Any:
    """The V8 library, initialised once per process (this creates no thread: only isolates do)."""
    global _dll
    with _dll_lock:
        if _dll is None:
            _dll = mr_dll.init_mini_racer(flags=V8_FLAGS, ignore_duplicate_init=True)
            _dll.mr_free_value.restype = None
    return _dll


# V8 deletes an isolate safely only on the thread that created it (freeing one made on another thread crashes in
# the heap's teardown), so one thread makes and frees them all. A sandboxed worker starts it when it prepares
# its isolates, before it forbids new threads.
_lifecycle = ThreadPoolExecutor(max_workers=1, thread_name_prefix="v8-isolates")


def _on_lifecycle_thread(work: Callable[[], Any]) -> Any:
    return _lifecycle.submit(work).result()


_PyGILState_Ensure = ctypes.pythonapi.PyGILState_Ensure
_PyGILState_Ensure.restype = ctypes.c_int
_PyGILState_Ensure.argtypes = []


def _keep_thread_state() -> None:
    """Called once on an isolate's thread, inside a callback: one more PyGILState_Ensure than Release, so the
    Python thread state ctypes makes for this foreign thread outlives the callback. Without it every callback
    makes and destroys a thread state, which costs four fifths of a syscall. (The state is reclaimed with the
    interpreter; an isolate's thread lives as long as the process's module does.)"""
    _PyGILState_Ensure()


class Isolate:
    """One V8 isolate with its own thread. Create it where threads may still be started (a sandboxed worker
    forbids new threads before module code runs: see ``pool``)."""

    def __init__(self) -> None:
        self._lib = library()
        # one ctypes closure per isolate (the library passes no context to its callback); kept alive with it
        self._callback = mr_dll.MR_CALLBACK(self.on_callback)
        self._ctx = _on_lifecycle_thread(lambda: self._lib.mr_init_context(self._callback))
        # held while a task runs; its completion callback releases it (a bare lock: lighter than an Event)
        self._done = threading.Lock()
        self._done.acquire()
        self._completed = False
        self._result: Any = None
        self._to_free: list[Any] = []
        self._syscalls: dict[int, Callable[[], None]] = {}
        self._next_syscall = itertools.count(1)
        self._thread_state_kept = False
        self._closed = False

    # -- the isolate thread ----------------------------------------------------------------------------------

    def on_callback(self, callback_id: int, raw: Any) -> None:
        if not self._thread_state_kept:
            _keep_thread_state()
            self._thread_state_kept = True
        if callback_id != _TASK_DONE:
            self._to_free.append(raw)
            handler = self._syscalls.get(callback_id)
            if handler is not None:  # a dropped one's caller (a module unloaded since) gets no answer
                handler()
            return
        self._result = raw
        self._completed = True
        self._done.release()

    # -- the calling thread ----------------------------------------------------------------------------------

    def make_syscall(self, handler: Callable[[], None]) -> tuple[Any, int]:
        """A JS function that runs ``handler`` synchronously on the isolate thread whenever JS calls it: its raw
        handle (owned by the caller) and its id, for ``drop_syscall``."""
        callback_id = next(self._next_syscall)
        self._syscalls[callback_id] = handler
        return self._lib.mr_make_js_callback(self._ctx, callback_id), callback_id

    def drop_syscall(self, callback_id: int) -> None:
        """From now on calls of that function do nothing (the module that held it is gone)."""
        self._syscalls.pop(callback_id, None)

    def eval(self, code: str) -> Any:
        """Evaluate ``code`` (a classic script) and return its value as a raw handle (the caller frees it with
        ``free``) or, for a number, a string or undefined, as a Python value."""
        data = code.encode("utf-8")
        source = self._lib.mr_alloc_string_val(self._ctx, data, len(data), T_STRING)
        try:
            return self._run(self._lib.mr_eval, source)
        finally:
            self.free(source)

    def call(self, function: Any, this: Any, argv: Any) -> Any:
        """Call the JS ``function`` (raw handle) with the arguments of the JS array ``argv`` (raw handle)."""
        return self._run(self._lib.mr_call_function, function, this, argv)

    def _run(self, method: Any, *args: Any) -> Any:
        self._completed = False
        task = method(self._ctx, *args, _TASK_DONE)
        try:
            while not self._done.acquire(timeout=_WAIT_SLICE_SECONDS):
                pass
        except BaseException:
            # the reducer watchdog (or an interrupt): stop the JS, and wait until the isolate is idle again,
            # since a syscall may be using the transaction this thread is about to roll back
            if not self._completed:
                self._lib.mr_cancel_task(self._ctx, task)
            if not (self._completed and self._done.locked()):  # else this thread took the release already
                self._done.acquire()
            self.free(self._release_after_task())
            raise
        return self._convert(self._release_after_task())

    def _release_after_task(self) -> Any:
        """Free the handles the task's syscalls were given; the task's own result handle."""
        for raw in self._to_free:
            self._lib.mr_free_value(self._ctx, raw)
        self._to_free.clear()
        raw, self._result = self._result, None
        return raw

    def _convert(self, raw: Any) -> Any:
        kind = raw.contents.type
        value = raw.contents.value
        if kind in (T_INTEGER, T_BOOL):
            result: Any = int(value.int_val)
        elif kind == T_DOUBLE:
            result = float(value.double_val)
        elif kind in (T_UNDEFINED, T_NULL):
            result = None
        elif kind in (
            T_STRING,
            T_EXECUTE_EXCEPTION,
            T_PARSE_EXCEPTION,
            T_OOM_EXCEPTION,
            T_TERMINATED_EXCEPTION,
        ):
            text = value.bytes_val[0 : raw.contents.len].decode("utf-8", "replace")
            self.free(raw)
            if kind == T_STRING:
                return text
            if kind in (T_OOM_EXCEPTION, T_TERMINATED_EXCEPTION):
                raise JsTerminated(text or "JavaScript was terminated", kind == T_OOM_EXCEPTION)
            raise JsError(text or "JavaScript error", kind)
        elif kind == T_TIMEOUT_EXCEPTION:
            self.free(raw)
            raise JsTerminated("JavaScript was terminated", False)
        else:
            return raw  # an object, a function, an ArrayBuffer: the caller owns the handle
        self.free(raw)
        return result

    def free(self, raw: Any) -> None:
        self._lib.mr_free_value(self._ctx, raw)

    def alloc_int(self, value: int, kind: int = T_INTEGER) -> Any:
        return self._lib.mr_alloc_int_val(self._ctx, value, kind)

    def alloc_string(self, text: str) -> Any:
        data = text.encode("utf-8")
        return self._lib.mr_alloc_string_val(self._ctx, data, len(data), T_STRING)

    def array_push(self, array: Any, value: Any) -> None:
        self._free_result(self._lib.mr_array_push(self._ctx, array, value))

    def set_item(self, obj: Any, key: Any, value: Any) -> None:
        self._free_result(self._lib.mr_set_object_item(self._ctx, obj, key, value))

    def _free_result(self, raw: Any) -> None:
        kind = raw.contents.type
        if kind >= T_EXECUTE_EXCEPTION:
            text = raw.contents.value.bytes_val[0 : raw.contents.len].decode("utf-8", "replace")
            self.free(raw)
            raise JsError(text, kind)
        self.free(raw)

    @staticmethod
    def buffer(raw: Any) -> memoryview:
        """A zero-copy view of the ArrayBuffer behind the raw handle ``raw`` (valid while the handle lives)."""
        if raw.contents.type != T_ARRAY_BUFFER:
            raise TypeError("not an ArrayBuffer")
        size = raw.contents.len
        data = (ctypes.c_ubyte * size).from_address(raw.contents.value.value_ptr)
        return memoryview(data).cast("B")

    def set_heap_limit(self, limit_bytes: int) -> None:
        """Past ``limit_bytes`` of V8 heap, the running JS is terminated (``JsTerminated.out_of_memory``)."""
        self._lib.mr_set_hard_memory_limit(self._ctx, limit_bytes)
        self._lib.mr_set_soft_memory_limit(self._ctx, limit_bytes // 2)

    def heap_limit_reached(self) -> bool:
        return bool(self._lib.mr_hard_memory_limit_reached(self._ctx))

    def recover_from_heap_limit(self, limit_bytes: int) -> None:
        """After the heap limit stopped a task: collect its garbage and re-arm the limit (which clears the
        sticky "reached" flag). The limit may also have requested a termination that lands after the task
        ended; a throw-away task absorbs it, so it does not stop the next real one."""
        self._lib.mr_low_memory_notification(self._ctx)
        self.set_heap_limit(limit_bytes)
        for _ in range(3):
            try:
                self.eval("0")
                return
            except JsTerminated:
                continue

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _on_lifecycle_thread(lambda: self._lib.mr_free_context(self._ctx))
