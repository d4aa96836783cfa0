"""The mini-racer internals the JS engine relies on (host/foreign/js/v8.py). A mini-racer upgrade that changes
any of them fails here first: the pinned version, the native library's prototypes, the callback a JS function
made by ``mr_make_js_callback`` runs synchronously while JS waits, ArrayBuffers seen without a copy, stopping a
task, the heap limit and its reset."""

from __future__ import annotations

import ctypes
import threading
from importlib import metadata

import pytest
from py_mini_racer import _dll as mr_dll

from spacetimedb.host.foreign.js import v8

from .test_js_engine import interrupted_after


def test_the_pinned_version_and_the_private_names_used():
    assert metadata.version("mini-racer") == "0.14.1"
    assert callable(mr_dll.init_mini_racer)
    assert mr_dll.MR_CALLBACK._argtypes_ == (ctypes.c_uint64, mr_dll.RawValueHandle)
    assert [name for name, _ in mr_dll._RawValue._fields_] == ["value", "len", "type"]
    lib = v8.library()
    for name in ("mr_init_context", "mr_eval", "mr_call_function", "mr_make_js_callback", "mr_cancel_task"):
        assert getattr(lib, name).argtypes, name


@pytest.fixture(scope="module")
def isolate():
    made = v8.Isolate()
    yield made
    made.close()


def test_a_js_callback_runs_python_synchronously_on_the_isolate_thread(isolate: v8.Isolate):
    mailbox = isolate.eval("globalThis.box = new ArrayBuffer(8); box")
    view = v8.Isolate.buffer(mailbox)
    seen: list[tuple[int, bool]] = []
    caller = threading.get_ident()

    def handler() -> None:  # doubles what JS wrote, before JS reads it back
        seen.append((view[0], threading.get_ident() != caller))
        view[1] = view[0] * 2

    function, _ = isolate.make_syscall(handler)
    global_object = isolate.eval("globalThis")
    key = isolate.alloc_string("hostcall")
    isolate.set_item(global_object, key, function)
    for raw in (function, global_object, key):
        isolate.free(raw)
    assert isolate.eval("const u = new Uint8Array(box); u[0] = 21; hostcall(); u[1]") == 42
    assert seen == [(21, True)]
    isolate.free(mailbox)


def test_calls_values_and_errors(isolate: v8.Isolate):
    function = isolate.eval("(function () { return 'called'; })")
    argv, undefined = isolate.eval("[]"), isolate.alloc_int(0, v8.T_UNDEFINED)
    assert isolate.call(function, undefined, argv) == "called"
    assert isolate.eval("1 + 2") == 3 and isolate.eval("undefined") is None
    with pytest.raises(v8.JsError, match="boom"):
        isolate.eval("throw new Error('boom')")
    for raw in (function, argv, undefined):
        isolate.free(raw)


def test_a_task_is_stopped_from_the_waiting_thread_and_the_isolate_serves_on(isolate: v8.Isolate):
    class Stop(BaseException):
        pass

    with interrupted_after(0.1, Stop), pytest.raises(Stop):
        isolate.eval("for (;;) {}")
    assert isolate.eval("'alive'") == "alive"


def test_the_heap_limit_terminates_and_rearming_clears_it():
    isolate = v8.Isolate()
    try:
        isolate.set_heap_limit(32 << 20)
        with pytest.raises(v8.JsTerminated) as stopped:
            isolate.eval("const hoard = []; for (;;) hoard.push(new Array(1 << 16).fill(0.5));")
        assert stopped.value.out_of_memory and isolate.heap_limit_reached()
        isolate.recover_from_heap_limit(32 << 20)
        assert not isolate.heap_limit_reached()
        assert isolate.eval("2 + 2") == 4
    finally:
        isolate.close()
