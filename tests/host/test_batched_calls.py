"""Reducer calls applied in batches through the host, some of them failing, leave the same state and the same
commitlog as the same calls applied one at a time: each call of a batch is its own transaction, and a failing
one rolls back alone.

Both databases are driven the way their worker drives them: a v3 client's frame (one or more ``CallReducer``
messages) is a job of the host thread run by ``ClientHub.frame``, and the replies are read back from what the
hub's outbox sends the server. One database gets each batch as one frame, the other every call in a frame of
its own."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetimedb.commitlog import transactions_from
from spacetimedb.host.clients import ClientHub
from spacetimedb.host.database import Database, DatabaseOptions
from spacetimedb.host.module_host import HostOptions
from spacetimedb.protocol import seam, v2
from spacetimedb.sats import ConnectionId

from .helpers import DB, OWNER, ServerEnd, rows

MODULE = b'''
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, i64, reducer, table, u32, u64


@table(name="cells", public=True)
class Cell:
    key: Annotated[u32, PrimaryKey]
    value: i64


@table(name="history")
class Entry:
    id: Annotated[u64, PrimaryKey, AutoInc]
    key: u32
    value: i64


@reducer
def put(ctx: ReducerContext, key: u32, value: i64) -> None:
    cells = ctx.db.cells
    if cells.key.find(key) is None:
        cells.insert(Cell(key=key, value=value))
    else:
        cells.key.update(Cell(key=key, value=value))
    ctx.db.history.insert(Entry(id=0, key=key, value=value))


@reducer
def add(ctx: ReducerContext, key: u32, delta: i64) -> None:
    """Fails after writing when the cell is missing or would go negative."""
    ctx.db.history.insert(Entry(id=0, key=key, value=delta))
    cell = ctx.db.cells.key.find(key)
    if cell is None:
        raise LookupError(f"no cell {key}")
    cell.value += delta
    ctx.db.cells.key.update(cell)
    if cell.value < 0:
        raise ValueError("negative")


@reducer
def move(ctx: ReducerContext, source: u32, target: u32) -> None:
    by_key = ctx.db.cells.key
    a, b = by_key.find(source), by_key.find(target)
    if a is None or b is None or source == target:
        raise LookupError("missing cell")
    b.value += a.value
    a.value = 0
    by_key.update(a)
    by_key.update(b)


@reducer
def drop(ctx: ReducerContext, key: u32) -> None:
    ctx.db.cells.key.delete(key)


@reducer
def put_then_fail(ctx: ReducerContext, key: u32, value: i64) -> None:
    put(ctx, key, value)
    raise RuntimeError("changed my mind")


@reducer
def noop(ctx: ReducerContext) -> None:
    pass
'''

KEYS = st.integers(0, 4)
VALUES = st.integers(-3, 9)
CALL = st.one_of(
    st.tuples(st.just("put"), st.tuples(KEYS, VALUES)),
    st.tuples(st.just("add"), st.tuples(KEYS, VALUES)),
    st.tuples(st.just("move"), st.tuples(KEYS, KEYS)),
    st.tuples(st.just("drop"), st.tuples(KEYS)),
    st.tuples(st.just("put_then_fail"), st.tuples(KEYS, VALUES)),
    st.tuples(st.just("noop"), st.just(())),
)
BATCHES = st.lists(st.lists(CALL, min_size=1, max_size=8), min_size=1, max_size=5)
Call = tuple[str, tuple[Any, ...]]

OUTCOMES = tuple(variant.name for variant in v2.REDUCER_OUTCOME.variants)
CLIENT = 1
CONNECTION = ConnectionId(0x5EED)
# one fixed time for every call of both databases, so that their commit records can be compared byte for byte
NOW_MICROS = 1_800_000_000_000_000


def start(path: Path) -> Database:
    options = DatabaseOptions(host=HostOptions(clock=lambda: NOW_MICROS))
    return Database.create(path, DB, OWNER, MODULE, options)


class Reply(NamedTuple):
    """What a client learns of one call: its ``ReducerResult`` and the offset the worker delivered it with."""

    request_id: int
    outcome: str  # the ``ReducerOutcome`` variant's name
    error: Any  # what ``Err`` or ``InternalError`` carries, else None
    offset: int | None

    @property
    def ok(self) -> bool:
        return self.outcome in ("Ok", "OkEmpty")


class Client:
    """The one v3 client of a database, served as its worker serves it."""

    def __init__(self, database: Database, server: ServerEnd) -> None:
        self.database = database
        self.server = server
        self.hub = ClientHub(database, server.outbox)
        self.requests = 0
        self._job(
            self.hub.connect, seam.ConnectClient(CLIENT, OWNER, CONNECTION, seam.CLIENT_PROTOCOL_V3, "")
        )
        assert server.next() == seam.ClientAccepted(CLIENT, None)

    def _job(self, serve: Any, request: Any) -> None:
        self.database.host.submit(functools.partial(serve, request))

    def call(self, frames: list[list[Call]]) -> list[Reply]:
        """Send each frame's calls as one v3 frame; the reply to every call."""
        runtime = self.database.host.runtime
        count = 0
        for calls in frames:
            messages = []
            for reducer, args in calls:
                encoded = runtime.reducer_call(reducer).encode_bsatn(args)
                messages.append(v2.encode_client_message(v2.CALL_REDUCER, self.requests, 0, reducer, encoded))
                self.requests += 1
            self._job(self.hub.frame, seam.ClientFrame(CLIENT, b"".join(messages)))
            count += len(calls)
        return self._results(count)

    def _results(self, count: int) -> list[Reply]:
        results: list[Reply] = []
        while len(results) < count:
            message = self.server.next()
            assert isinstance(message, seam.Deliveries), message
            for delivery in message.items:
                assert delivery.client == CLIENT
                (reply,) = v2.decode_server_messages(delivery.payload)
                assert reply.tag == v2.REDUCER_RESULT, reply
                request_id, _, outcome = reply.value
                error = outcome.value if OUTCOMES[outcome.tag] in ("Err", "InternalError") else None
                results.append(Reply(request_id, OUTCOMES[outcome.tag], error, delivery.offset))
        return results


def logged_since(database: Database, path: Path, start: int) -> list[bytes]:
    """The commitlog's transactions from ``start`` on, once they are all on disk."""
    db = database.host.db
    if db.next_offset > start:
        assert db.wait_durable(db.next_offset - 1, 30)
    return [payload for _, payload in transactions_from(path / "clog", start)]


class Model:
    """What the module's reducers do, in plain Python: which calls succeed, and the cells they leave."""

    def __init__(self) -> None:
        self.cells: dict[int, int] = {}
        self.history = 0

    def apply(self, reducer: str, args: tuple[Any, ...]) -> bool:
        cells = self.cells
        if reducer == "put":
            key, value = args
            cells[key] = value
        elif reducer == "add":
            key, delta = args
            if key not in cells or cells[key] + delta < 0:
                return False
            cells[key] += delta
        elif reducer == "move":
            source, target = args
            if source not in cells or target not in cells or source == target:
                return False
            cells[target] += cells[source]
            cells[source] = 0
            return True
        elif reducer == "drop":
            cells.pop(args[0], None)
            return True
        else:
            return reducer != "put_then_fail"  # it fails; noop succeeds
        self.history += 1
        return True


def test_batches_with_failures_equal_the_same_calls_one_by_one(tmp_path: Path) -> None:
    batched_path, single_path = tmp_path / "batched", tmp_path / "single"
    batched, single = start(batched_path), start(single_path)
    model = Model()
    try:
        with ServerEnd(batched) as batched_server, ServerEnd(single) as single_server:
            in_batches, one_by_one = Client(batched, batched_server), Client(single, single_server)

            @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(batches=BATCHES)
            def check(batches: list[list[Call]]) -> None:
                # both databases went through the same calls so far, so they agree on where the log goes on
                offset = batched.host.db.next_offset
                assert single.host.db.next_offset == offset
                results = in_batches.call(batches)
                assert results == one_by_one.call([[call] for batch in batches for call in batch])
                for table in ("cells", "history"):
                    assert rows(batched.host, table) == rows(single.host, table)
                logged = logged_since(batched, batched_path, offset)
                assert logged == logged_since(single, single_path, offset)
                # every committed call that changed something is in the log, each as its own transaction
                committed = [reply.offset for reply in results if reply.offset is not None]
                assert committed == list(range(offset, offset + len(logged)))
                assert all(reply.offset is None for reply in results if not reply.ok)
                # and what they did is what the reducers say, so a failing call changed nothing
                expected = [model.apply(reducer, args) for batch in batches for reducer, args in batch]
                assert [reply.ok for reply in results] == expected
                assert rows(batched.host, "cells") == sorted(model.cells.items(), key=repr)
                assert len(rows(batched.host, "history")) == model.history

            check()
    finally:
        batched.shutdown()
        single.shutdown()
