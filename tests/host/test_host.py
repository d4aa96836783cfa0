"""The host layer on its own, in the test process: databases as ``Database`` objects, no worker processes
(those are tested in tests/controller and tests/security)."""

import functools
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import pytest

from spacetimedb.host.database import DatabaseOptions, LaunchError
from spacetimedb.host.module_host import HostOptions
from spacetimedb.module.context import AuthCtx
from spacetimedb.protocol.messages import COMMITTED, FAILED, INTERNAL_ERROR, OUT_OF_BUDGET
from spacetimedb.sats import ConnectionId

from .helpers import CHAT, DB, OWNER, LocalDatabases, call, connect, disconnect, ident, rows, wait_until


@pytest.fixture
def controller(tmp_path):
    hc = LocalDatabases(tmp_path, DatabaseOptions(host=HostOptions(reducer_budget_seconds=0.5)))
    yield hc
    hc.shutdown()


def test_quickstart_chat_two_clients_and_restart(tmp_path, controller):
    assert controller.publish(DB, OWNER, CHAT)[0] == "created"
    host = controller.get_or_launch(DB)
    alice, bob = ident(1), ident(2)
    a_conn, b_conn = ConnectionId.random(), ConnectionId.random()
    assert connect(host, alice, a_conn).ok and connect(host, bob, b_conn).ok
    assert call(host, "set_name", "Alice", sender=alice, connection_id=a_conn).ok
    assert call(host, "set_name", "Bob", sender=bob, connection_id=b_conn).ok
    assert call(host, "send_message", "hi bob", sender=alice, connection_id=a_conn).ok
    assert call(host, "send_message", "hi alice", sender=bob, connection_id=b_conn).ok
    assert disconnect(host, bob, b_conn).ok
    users = {r[0]: (r[1], r[2]) for r in rows(host, "user")}
    assert users == {alice: ("Alice", True), bob: ("Bob", False)}
    assert [m[3] for m in sorted(rows(host, "message"))] == ["hi bob", "hi alice"]
    controller.shutdown()

    again = LocalDatabases(tmp_path)
    try:
        host = again.get_or_launch(DB)
        # alice was still connected when the server stopped: her disconnect runs on launch
        assert wait_until(lambda: not rows(host, "st_client"))
        users = {r[0]: (r[1], r[2]) for r in rows(host, "user")}
        assert users == {alice: ("Alice", False), bob: ("Bob", False)}
        assert [(m[0], m[3]) for m in sorted(rows(host, "message"))] == [(1, "hi bob"), (2, "hi alice")]
        assert call(host, "send_message", "after restart", sender=alice).ok
        assert max(m[0] for m in rows(host, "message")) > 2
    finally:
        again.shutdown()


def test_reducer_errors_roll_back_and_report(controller):
    controller.publish(DB, OWNER, CHAT)
    host = controller.get_or_launch(DB)
    outcome = call(host, "set_name", "")
    assert outcome.status == FAILED and outcome.message == "ValueError: Names must not be empty"
    outcome = call(host, "set_name", "Nobody", sender=ident(9))
    assert outcome.status == FAILED and "unknown user" in outcome.message
    assert call(host, "no_such_reducer").status == INTERNAL_ERROR
    bad_args = call(host, "send_message", 5)
    assert bad_args.status == INTERNAL_ERROR and "send_message" in bad_args.message
    lifecycle = call(host, "on_connect")
    assert lifecycle.status == INTERNAL_ERROR and "lifecycle" in lifecycle.message
    logged = "\n".join(host.module_log.tail())
    assert "Names must not be empty" in logged and '"function":"set_name"' in logged


RUNAWAY = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, u32

@table
class Item:
    id: Annotated[u32, PrimaryKey]

@reducer
def spin(ctx: ReducerContext) -> None:
    ctx.db.item.insert(Item(id=1))
    while True:
        pass

@reducer
def dup(ctx: ReducerContext) -> None:
    ctx.db.item.insert(Item(id=7))
    ctx.db.item.insert(Item(id=7))
    ctx.db.item.insert(Item(id=8))

@reducer
def add(ctx: ReducerContext, n: u32) -> None:
    ctx.db.item.insert(Item(id=n))
"""


def test_runaway_reducer_is_stopped_within_budget_and_unique_violation_writes_nothing(controller):
    controller.publish(DB, OWNER, RUNAWAY)
    host = controller.get_or_launch(DB)
    started = time.monotonic()
    outcome = call(host, "spin")
    assert outcome.status == OUT_OF_BUDGET and time.monotonic() - started < 3
    assert rows(host, "item") == []
    outcome = call(host, "dup")
    assert outcome.status == COMMITTED  # inserting an identical row is a no-op (set semantics)
    assert rows(host, "item") == [(7,), (8,)]
    assert call(host, "add", 9).ok and rows(host, "item") == [(7,), (8,), (9,)]


def test_publish_refuses_broken_modules_and_failing_init(controller):
    with pytest.raises(LaunchError, match="reducer"):
        controller.publish(
            DB, OWNER, b"from spacetimedb import reducer\n@reducer\ndef f(x: int) -> None: ...\n"
        )
    failing_init = (
        RUNAWAY
        + b"""
@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.item.insert(Item(id=1))
    raise RuntimeError("init refuses")
"""
    )
    with pytest.raises(LaunchError, match="init refuses"):
        controller.publish(DB, OWNER, failing_init)
    assert not controller.exists(DB)
    assert list(controller.database_dir(DB).iterdir()) == []  # nothing left of the failed creation


def test_in_memory_database():
    hc = LocalDatabases(None)
    try:
        hc.publish(DB, OWNER, CHAT)
        host = hc.get_or_launch(DB)
        assert call(host, "send_message", "in memory").ok
        assert [m[3] for m in rows(host, "message")] == ["in memory"]
        hc.delete(DB)
        assert not hc.exists(DB)
    finally:
        hc.shutdown()


def on_host(host, work):
    """Run a host method that must run on the host thread, and wait for its outcome."""
    future = Future()
    host.submit(work, future.set_result)
    return future.result(10)


def test_connection_credentials_come_and_go_with_the_client(controller):
    """Upstream's st_connection_credentials (crates/datastore/src/system_tables.rs, table 11: connection_id,
    jwt_payload): a row per connected client with the payload of the token it connected with, written with its
    st_client row before client_connected runs and deleted with it on disconnect (module_host.rs
    call_identity_connected / delete_st_client)."""
    controller.publish(DB, OWNER, CHAT)
    host = controller.get_or_launch(DB)
    who, connection = ident(7), ConnectionId(77)
    payload = '{"iss":"localhost","sub":"someone","iat":1}'
    assert on_host(host, lambda: host.connect_now(who, connection, AuthCtx(payload))).status == COMMITTED
    assert rows(host, "st_connection_credentials") == [(connection, payload)]
    assert on_host(host, lambda: host.disconnect_now(who, connection, AuthCtx(payload))).status == COMMITTED
    assert rows(host, "st_connection_credentials") == []
    assert rows(host, "st_client") == []


def _drain_held_queue(tmp_path, jobs: list[Callable[[list[int]], None]]) -> tuple[list[int], list[int]]:
    """Queue ``jobs`` (each given the list of what ran) behind a job that holds the host thread, let them all run;
    return what ran and, at each run of the batch listeners, how many had."""
    from spacetimedb.host.database import Database

    database = Database.create(tmp_path / "db", DB, OWNER, CHAT)
    try:
        host = database.host
        done: list[int] = []
        flushed_after: list[int] = []
        host.add_batch_listener(lambda: flushed_after.append(len(done)))
        gate = threading.Event()
        host.submit(lambda: gate.wait(10) and None)  # holds the host thread while the queue fills
        for job in jobs:
            host.submit(functools.partial(job, done))
        finished: Future[None] = Future()
        gate.set()
        host.submit(lambda: finished.set_result(None))
        finished.result(10)
        return done, flushed_after
    finally:
        database.shutdown()


def test_a_long_queue_is_answered_in_parts(tmp_path):
    """The batch listeners (the worker's flush of replies) run after every ``JOBS_PER_BATCH`` jobs of a long
    queue, not only once it is empty: replies held until then would reach clients in bursts."""
    from spacetimedb.host.module_host import JOBS_PER_BATCH

    jobs = 3 * JOBS_PER_BATCH + 1
    done, flushed_after = _drain_held_queue(
        tmp_path, [functools.partial(lambda index, done: done.append(index), index) for index in range(jobs)]
    )
    assert done == list(range(jobs))  # in order, each once
    parts = [n for n in flushed_after if 0 < n < jobs]
    assert len(parts) >= 2, flushed_after  # listeners ran while most of the queue still waited
    assert all(later - earlier <= JOBS_PER_BATCH for earlier, later in itertools.pairwise(parts))


def test_a_queue_of_long_jobs_is_answered_after_each_one(tmp_path):
    """A job may be a client frame of many calls: past ``BATCH_SECONDS`` the listeners run even before
    ``JOBS_PER_BATCH`` jobs, so that the replies (and the durability thread's turn at the GIL) are not held."""
    from spacetimedb.host.module_host import BATCH_SECONDS, JOBS_PER_BATCH

    def long_job(index: int, done: list[int]) -> None:
        time.sleep(2 * BATCH_SECONDS)
        done.append(index)

    jobs = JOBS_PER_BATCH // 2
    done, flushed_after = _drain_held_queue(
        tmp_path, [functools.partial(long_job, index) for index in range(jobs)]
    )
    assert done == list(range(jobs))
    assert [n for n in flushed_after if 0 < n < jobs] == list(range(1, jobs)), flushed_after
