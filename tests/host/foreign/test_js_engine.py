"""The JS engine against a module written straight on spacetime:sys@2.0 (js_modules/raw_abi.js) and a fake
InstanceEnv: the syscalls' shapes, errors (SenderError, errnos, buffer too small), payloads larger than the
mailbox, the call context, TextEncoder/TextDecoder, no Math.random, the time budget and the heap limit; and the
bundle rewrite's refusals."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.host.foreign import BufferTooSmall, ForeignPanic, ForeignUserError, HostCallError
from spacetimedb.host.foreign.abi import NO_SUCH_TABLE
from spacetimedb.host.foreign.js import IsolatePool, JsEngine, NoIsolateLeft
from spacetimedb.host.foreign.js.bundle import BundleError, to_script
from spacetimedb.host.watchdog import ReducerTimeout
from spacetimedb.module import ModuleError
from spacetimedb.sats import ConnectionId, Identity, Timestamp

RAW_ABI = (Path(__file__).parent / "js_modules" / "raw_abi.js").read_bytes()
SENDER = Identity(0xC200AB)
CONNECTION = ConnectionId(0x77)
WHEN = Timestamp(1_700_000_000_123_456)
THINGS = 4097


class FakeEnv:
    """A table `things` of opaque rows, and everything the module asks recorded."""

    def __init__(self) -> None:
        self.rows: list[bytes] = []
        self.logs: list[str] = []
        self.iters: dict[int, list[bytes]] = {}
        self.scheduled: list[tuple[str, bytes]] = []

    def table_id_from_name(self, name: str) -> int:
        if name != "things":
            raise HostCallError(NO_SUCH_TABLE, name)
        return THINGS

    def insert(self, table_id: int, row: bytes) -> bytes:
        assert table_id == THINGS
        self.rows.append(bytes(row))
        return bytes([len(self.rows), 0xEE])

    def table_scan(self, table_id: int) -> int:
        handle = len(self.iters) + 1
        self.iters[handle] = list(self.rows)
        return handle

    def iter_advance(self, handle: int, capacity: int) -> tuple[bytes, bool]:
        pending = self.iters[handle]
        out = b""
        while pending and len(out) + len(pending[0]) <= capacity:
            out += pending.pop(0)
        if not out and pending:
            raise BufferTooSmall(len(pending[0]))
        return out, not pending

    def iter_close(self, handle: int) -> None:
        del self.iters[handle]

    def table_row_count(self, table_id: int) -> int:
        return len(self.rows)

    def clear(self, table_id: int) -> int:
        count, self.rows = len(self.rows), []
        return count

    def console_log(self, level: int, message: str, target: Any, filename: Any, line: int) -> None:
        self.logs.append(message)

    def console_timer_start(self, name: str) -> int:
        return 5

    def console_timer_end(self, timer: int) -> None:
        self.logs.append(f"timer {timer} ended")

    def identity(self) -> bytes:
        return (0xDB).to_bytes(32, "little")

    def get_jwt_payload(self, connection_id: bytes) -> bytes:
        return b'{"sub":"me"}' if int.from_bytes(connection_id, "little") == CONNECTION.value else b""

    def schedule_immediate(self, reducer: str, args: bytes) -> None:
        self.scheduled.append((reducer, args))


@contextmanager
def interrupted_after(seconds: float, exc_type: type[BaseException]) -> Iterator[None]:
    """Raise ``exc_type`` in this thread after ``seconds``, as the reducer watchdog does past a budget."""
    caller = threading.get_ident()
    timer = threading.Timer(
        seconds,
        lambda: ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(caller), ctypes.py_object(exc_type)
        ),
    )
    timer.start()
    try:
        yield
    finally:
        timer.join()


@pytest.fixture(scope="module")
def engine():
    made = JsEngine(RAW_ABI)
    yield made
    made.close()


@pytest.fixture
def env(engine: JsEngine) -> FakeEnv:
    fake = FakeEnv()
    engine.attach(fake)  # type: ignore[arg-type]
    return fake


def call(engine: JsEngine, reducer: int, args: bytes = b"") -> None:
    engine.call_reducer(reducer, SENDER, CONNECTION, WHEN, args)


def test_describe_and_the_other_hooks(engine: JsEngine, env: FakeEnv):
    assert engine.describe() == b"described"
    assert engine.call_procedure(3, SENDER, None, WHEN, b"abc") == b"procedure 3 3"
    assert engine.call_view(2, SENDER, b"") == b"view 2 c200ab"
    assert engine.call_view_anon(4, b"") == b"anon 4"


def test_insert_writes_the_generated_columns_back(engine: JsEngine, env: FakeEnv):
    call(engine, 0, b"row-a")
    assert env.rows == [b"row-a"] and env.logs == ["generated 1,238"]


def test_a_scan_brings_its_first_rows_and_the_buffer_grows_to_fit_them(engine: JsEngine, env: FakeEnv):
    env.rows = [b"ab", b"cdef", b"gh", b"ijklmn"]
    call(engine, 1)
    # all four came with the scan, as one block of whole rows that the module's 4-byte buffer grew to hold
    assert env.logs == ["grow to 14", "rows abcdefghijklmn", "count 4", "cleared 4"]
    assert env.rows == []


def test_rows_past_the_first_block_come_from_the_host_whole(engine: JsEngine, env: FakeEnv):
    env.rows = [bytes([97 + i]) * 5000 for i in range(7)]
    call(engine, 1)
    blocks = ["".join(chr(97 + i) * 5000 for i in block) for block in ([0, 1, 2], [3, 4, 5], [6])]
    assert env.logs == ["grow to 15000", f"rows {'|'.join(blocks)}", "count 7", "cleared 7"]


def test_a_row_larger_than_the_buffer_is_asked_for_by_size(engine: JsEngine, env: FakeEnv):
    env.rows = [b"x" * 10, b"y" * 20_000]
    call(engine, 1)
    assert env.logs == [
        "grow to 10",
        "grow to 20000",
        f"rows {'x' * 10}|{'y' * 20_000}",
        "count 2",
        "cleared 2",
    ]


def test_sender_error_is_a_user_error_and_errnos_throw_the_modules_own_class(engine: JsEngine, env: FakeEnv):
    with pytest.raises(ForeignUserError, match=r"^not allowed$"):
        call(engine, 2)
    with pytest.raises(ForeignPanic, match="errno 4: NO_SUCH_TABLE: nope") as failed:
        call(engine, 3)
    assert env.logs == ["true 4 errno 4: NO_SUCH_TABLE: nope"]
    assert "(bundle.js:" in str(failed.value)  # the module's stack, in its own file and lines


def test_a_bad_length_fails_the_call_alone(engine: JsEngine, env: FakeEnv):
    with pytest.raises(ForeignPanic, match="RangeError: row length 100 is past the end of its buffer"):
        call(engine, 6)
    call(engine, 0, b"after")
    assert env.rows == [b"after"]


def test_call_context_identity_jwt_timers_and_no_math_random(engine: JsEngine, env: FakeEnv):
    call(engine, 7)
    assert env.logs == [
        f"sender c200ab connection 77 at {WHEN.micros}",
        "identity db",
        'jwt {"sub":"me"}',
        "timer 5 ended",
        "random undefined",
    ]


def test_payloads_larger_than_the_mailbox_travel_both_ways(engine: JsEngine, env: FakeEnv):
    big = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit: three mailboxes and a piece
    call(engine, 8, big)
    assert env.rows == [big]
    assert env.logs == [f"sizes {len(big)} {len(big)}"]


def test_text_encoding_round_trips(engine: JsEngine, env: FakeEnv):
    sample = "héllo, wörld — 𝄞 ✓"
    call(engine, 9, sample.encode())
    assert env.logs == [f"text {sample} true"]


def test_a_runaway_loop_is_stopped_by_the_watchdog_and_the_engine_serves_on(engine: JsEngine, env: FakeEnv):
    with interrupted_after(0.2, ReducerTimeout), pytest.raises(ReducerTimeout):
        call(engine, 4)
    call(engine, 0, b"next")
    assert env.rows == [b"next"]


def test_memory_growth_stops_at_the_heap_limit_and_the_engine_serves_on():
    small = JsEngine(RAW_ABI, heap_limit_bytes=48 << 20)
    try:
        fake = FakeEnv()
        small.attach(fake)  # type: ignore[arg-type]
        with pytest.raises(ForeignPanic, match="ran out of memory"):
            call(small, 5)
        call(small, 0, b"still")
        assert fake.rows == [b"still"]
    finally:
        small.close()


def test_a_worker_without_isolates_refuses_a_js_module_saying_why():
    pool = IsolatePool()
    pool.seal()
    with pytest.raises(ModuleError, match="does not switch to a JS module in place"):
        JsEngine(RAW_ABI, pool)


def test_a_sealed_pool_hands_out_prepared_isolates_and_reuses_given_back_ones():
    pool = IsolatePool()
    pool.prepare(1)
    pool.seal()
    first = JsEngine(RAW_ABI, pool)
    with pytest.raises(ModuleError, match="no V8 isolate left for another JS module"):
        JsEngine(RAW_ABI, pool)
    with pytest.raises(NoIsolateLeft):
        pool.prepare(1)
    first.close()
    assert pool.available() == 1
    second = JsEngine(RAW_ABI, pool)  # the next version of the module, in the same isolate
    try:
        fake = FakeEnv()
        second.attach(fake)  # type: ignore[arg-type]
        call(second, 0, b"fresh")
        assert fake.rows == [b"fresh"] and pool.available() == 0
    finally:
        second.close()


@pytest.mark.parametrize(
    ("bundle", "refusal"),
    [
        (b'import x from "spacetime:sys@2.0";\nexport { x as default };', "has no default export"),
        (
            b'import * as s from "spacetime:sys@1.2";\nexport { s as default };',
            "rebuild the module with spacetimedb 2.x",
        ),
        (b'import * as s from "left-pad";\nexport { s as default };', "'left-pad'"),
        (b'import "polyfill";\nexport { a as default };', "for its side effects"),
        (b"export default 1;", "export default"),
        (b"const a = 1;\nexport { a };", "no default export"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bundles_this_host_cannot_run_are_refused_with_the_reason(bundle: bytes, refusal: str):
    with pytest.raises(BundleError, match=refusal):
        to_script(bundle)


def test_the_script_keeps_the_bundles_line_numbers_and_sorts_the_exports():
    script = to_script(
        b'import * as s from "spacetime:sys@2.0";\nconst b = 1, a = 2;\nexport { b, a as default, s };\n'
    )
    assert script.sys_versions == ("2.0",) and script.exports == ("b", "default", "s")
    assert script.source.splitlines()[1] == "const b = 1, a = 2;"


def test_load_failures_are_module_errors_naming_the_cause():
    with pytest.raises(ModuleError, match="does not parse"):
        JsEngine(b'import * as s from "spacetime:sys@2.0";\nconst = ;\nexport { s as default };')
    with pytest.raises(ModuleError, match="no moduleHooks"):
        JsEngine(b'import * as s from "spacetime:sys@2.0";\nconst d = {};\nexport { d as default };')
    with pytest.raises(ModuleError, match="top-level failure"):
        JsEngine(b'throw new Error("top-level failure");\nconst d = {};\nexport { d as default };')


def test_top_level_code_past_the_load_budget_is_stopped():
    with interrupted_after(0.2, ReducerTimeout), pytest.raises(ReducerTimeout):
        JsEngine(b"for (;;) {}\nconst d = {};\nexport { d as default };")


@pytest.mark.slow
@pytest.mark.node
def test_a_database_of_a_typescript_module_shuts_down_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """In one process (a test's, a benchmark's) the module loads on the database's host thread and unloads on
    the thread that shuts it down: V8 crashed there when an isolate was freed on another thread than the one
    that made it (a real TypeScript module's heap is needed to show it)."""
    import shutil

    from spacetimedb.cli.jsbuild import build_typescript
    from spacetimedb.host.database import Database
    from tests.client.node_tools import node_tools

    tools = node_tools(purpose="bundling the TypeScript keynote module")
    project = tmp_path / "keynote"
    shutil.copytree(Path(__file__).resolve().parents[2] / "fixtures" / "ts_modules" / "keynote", project)
    (project / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    monkeypatch.setenv("SPACETIME_TOOLS_CACHE", str(tools.node_modules.parent.parent / "tools"))
    program = build_typescript(project)
    database = Database.create(tmp_path / "db", Identity(0xC2 << 248 | 7), SENDER, program)
    try:
        assert database.host.call_reducer_sync("seed", [2, 5], sender=SENDER, json_args=True).ok
    finally:
        database.shutdown()


def test_volatile_nonatomic_schedule_immediate_hands_the_reducer_and_its_args_to_the_host(
    engine: JsEngine, env: FakeEnv
):
    call(engine, 10, b"\x07\x00")
    assert env.scheduled == [("later", b"\x07\x00")]
