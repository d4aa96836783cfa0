"""The Python client SDK against a real server: the quickstart chat with two clients, then the cache rules,
subscriptions, one-off queries and the asyncio API on a module with every kind of type."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacetimedb.client import (
    ConnectError,
    Credentials,
    DbConnection,
    QueryError,
    ReducerError,
    ReducerStatus,
    SubscriptionFailed,
)
from spacetimedb.sats import ConnectionId

from .helpers import CHAT_MODULE, ROOT, publish, write_bindings

KITCHEN_SINK = ROOT / "tests" / "codegen" / "kitchen_sink.py"
pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, tick: Callable[[], Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition")
        if tick is not None:
            tick()
        time.sleep(0.01)


@pytest.fixture
def bindings(tmp_path: Path) -> Iterator[Callable[[Path, str], ModuleType]]:
    """Generate Python bindings for a module into a package and import it."""
    imported: list[str] = []

    def make(module: Path, package: str) -> ModuleType:
        write_bindings(module, "python", tmp_path / "bindings" / package, include_private=True)
        imported.append(package)
        importlib.invalidate_caches()
        return importlib.import_module(package)

    sys.path.insert(0, str(tmp_path / "bindings"))
    try:
        yield make
    finally:
        sys.path.remove(str(tmp_path / "bindings"))
        for name in [m for m in sys.modules if m.split(".")[0] in imported]:
            del sys.modules[name]


def test_two_python_clients_chat(server, bindings, tmp_path: Path) -> None:
    publish(server.url, "chat", CHAT_MODULE)
    chat = bindings(CHAT_MODULE, "chat_bindings")
    creds = Credentials("chat-test", directory=tmp_path / "credentials")
    assert creds.load() is None

    # B: untyped (schema from the server), driven by frame_tick like a game loop
    seen_by_b: list[tuple[str, str | None, str]] = []
    renames_by_b: list[tuple[str | None, str | None, str]] = []
    b_ready = threading.Event()
    b = (
        DbConnection.builder()
        .with_uri(server.url)
        .with_database_name("chat")
        .with_compression("none")
        .build()
    )
    b.db.message.on_insert(
        lambda ctx, m: seen_by_b.append(
            (m.text, getattr(ctx.db.user.identity.find(m.sender), "name", None), ctx.event.tag)
        )
    )
    b.db.user.on_update(lambda ctx, old, new: renames_by_b.append((old.name, new.name, ctx.event.tag)))
    b.subscription_builder().on_applied(lambda ctx: b_ready.set()).subscribe(
        ["SELECT * FROM user", "SELECT * FROM message"]
    )
    wait_for(b_ready.is_set, tick=b.frame_tick)

    # A: typed bindings, processed on a thread
    connected: list[tuple[Any, str]] = []
    reducer_events: list[Any] = []
    a_ready = threading.Event()
    a = (
        chat.DbConnection.builder()
        .with_uri(server.url)
        .with_database_name("chat")
        .with_token(creds.load())
        .with_confirmed_reads(True)
        .on_connect(lambda conn, identity, token: (connected.append((identity, token)), creds.save(token)))
        .build()
    )
    a.reducers.on_send_message(lambda ctx, text: reducer_events.append((ctx.event, text)))
    a.reducers.on_set_name(lambda ctx, name: reducer_events.append((ctx.event, name)))
    a.subscription_builder().on_applied(lambda ctx: a_ready.set()).subscribe(
        ["SELECT * FROM user", "SELECT * FROM message"]
    )
    a.run_threaded()
    assert a_ready.wait(10)
    identity = connected[0][0]
    assert a.identity == identity and isinstance(a.connection_id, ConnectionId)
    assert creds.load() == connected[0][1]

    assert a.reducers.set_name("py-alice").result(10).committed
    me = a.db.user.identity.find(identity)
    assert isinstance(me, chat.User) and me.name == "py-alice" and me.online
    for text in ("hello from python", "second message"):
        event = a.reducers.send_message(text).result(10)
        assert event.status is ReducerStatus.COMMITTED and event.caller_identity == identity
    with pytest.raises(ReducerError) as failure:
        a.reducers.set_name("").result(10)
    assert failure.value.event.status is ReducerStatus.FAILED
    assert failure.value.event.error == "ValueError: Names must not be empty"

    assert sorted(m.text for m in a.db.message.iter()) == ["hello from python", "second message"]
    assert all(isinstance(m, chat.Message) and m.sender == identity for m in a.db.message)
    statuses = [(e.reducer, e.status, e.error, arg) for e, arg in reducer_events]
    assert statuses == [
        ("set_name", ReducerStatus.COMMITTED, None, "py-alice"),
        ("send_message", ReducerStatus.COMMITTED, None, "hello from python"),
        ("send_message", ReducerStatus.COMMITTED, None, "second message"),
        ("set_name", ReducerStatus.FAILED, "ValueError: Names must not be empty", ""),
    ]
    timestamps = [e.timestamp for e, _ in reducer_events]
    assert timestamps == sorted(timestamps)

    # B saw A's messages live, with A's name, as other clients' transactions
    wait_for(lambda: len(seen_by_b) == 2, tick=b.frame_tick)
    assert seen_by_b == [
        ("hello from python", "py-alice", "Transaction"),
        ("second message", "py-alice", "Transaction"),
    ]
    assert (None, "py-alice", "Transaction") in renames_by_b
    assert b.db.message.count() == 2 and b.db.user.count() == 2

    # A leaves: B sees it go offline; A comes back with the saved token as the same identity
    a.disconnect()
    assert a.wait_closed(10)
    wait_for(lambda: not b.db.user.identity.find(identity).online, tick=b.frame_tick)
    back: list[Any] = []
    again = (
        chat.DbConnection.builder().with_uri(server.url).with_database_name("chat").with_token(creds.load())
    )
    again = again.on_connect(lambda conn, ident, token: back.append(ident)).build()
    again.run_threaded()
    wait_for(lambda: bool(back))
    assert back == [identity]
    wait_for(lambda: b.db.user.identity.find(identity).online, tick=b.frame_tick)
    again.disconnect()
    b.disconnect()
    wait_for(lambda: b.wait_closed(0), tick=b.frame_tick)


def test_cache_rules_subscriptions_and_queries(server, bindings) -> None:
    publish(server.url, "sink", KITCHEN_SINK)
    sink = bindings(KITCHEN_SINK, "sink_bindings")
    log: list[tuple[str, Any]] = []
    conn = sink.DbConnection.builder().with_uri(server.url).with_database_name("sink").build()
    conn.db.tag.on_insert(lambda ctx, row: log.append(("tag+", (row.label, row.weight, ctx.event.tag))))
    conn.db.tag.on_delete(lambda ctx, row: log.append(("tag-", (row.label, row.weight, ctx.event.tag))))
    conn.db.user_profile.on_update(
        lambda ctx, old, new: log.append(("renamed", (old.nick_name, new.nick_name)))
    )
    conn.run_threaded()

    applied = threading.Event()
    everything = (
        conn.subscription_builder()
        .on_applied(lambda ctx: applied.set())
        .subscribe(["SELECT * FROM user_profile", "SELECT * FROM tag"])
    )
    assert applied.wait(10) and everything.is_active

    # typed values of every kind round-trip through reducer arguments, rows and the cache
    circle = sink.Shape.Circle(sink.Circle(radius=1.5))
    conn.reducers.add_profile("neo", 3, sink.Point(x=1, y=2), sink.Color.DARK_GREEN, circle).result(10)
    conn.reducers.add_profile(
        "trinity", 3, sink.Point(x=5, y=5), sink.Color.RED, sink.Shape.Square(sink.Square(2.0))
    ).result(10)
    profile = conn.db.user_profile.nick_name.find("neo")
    assert isinstance(profile, sink.UserProfile) and profile.owner_id == conn.identity
    assert profile.home == sink.Point(1, 2) and isinstance(profile.home, sink.Point)
    assert profile.favorite is not None and profile.favorite.variant == "DARK_GREEN"
    assert profile.shape == circle and isinstance(profile.shape.value, sink.Circle)
    assert profile.trail == (sink.Point(1, 2), sink.Point(2, 3)) and profile.avatar == b"\x00\x01"
    assert profile.motto is None and profile.best == sink.Point(1, 2) and profile.big == -(1 << 100)
    assert {p.nick_name for p in conn.db.user_profile.level.filter(3)} == {"neo", "trinity"}
    assert [p.nick_name for p in conn.db.user_profile.by_level_nick.filter((3, "neo"))] == ["neo"]
    assert [p.nick_name for p in conn.db.user_profile.by_level_nick.filter((3,))] != []
    assert conn.db.user_profile.id.find(profile.id) == profile

    # a primary-key table: delete + insert of one key in a transaction is an update
    conn.reducers.rename(profile.id, "the one").result(10)
    assert ("renamed", ("neo", "the one")) in log
    assert conn.db.user_profile.id.find(profile.id).nick_name == "the one"
    assert conn.db.user_profile.nick_name.find("neo") is None
    assert conn.db.user_profile.nick_name.find("the one").id == profile.id
    assert conn.db.user_profile.count() == 2

    # a table without a primary key is keyed by row bytes, and rows are counted per query set
    tags_only = threading.Event()
    second = (
        conn.subscription_builder().on_applied(lambda ctx: tags_only.set()).subscribe("SELECT * FROM tag")
    )
    assert tags_only.wait(10)
    conn.reducers.add_tag("x", 1).result(10)
    conn.reducers.add_tag("y", 2).result(10)
    assert sorted((t.label, t.weight) for t in conn.db.tag) == [("x", 1), ("y", 2)]
    assert (
        log.count(("tag+", ("x", 1, "Reducer"))) == 1
    )  # the row arrived twice (two query sets), once for callbacks
    ended = threading.Event()
    second.unsubscribe_then(lambda ctx: ended.set())
    assert ended.wait(10) and second.is_ended
    assert conn.db.tag.count() == 2  # still held by the first query set
    conn.reducers.remove_tag("x", 1).result(10)
    assert [(t.label, t.weight) for t in conn.db.tag] == [("y", 2)]
    assert ("tag-", ("x", 1, "Reducer")) in log

    # one-off queries decode rows without touching the cache; errors come back as exceptions
    result = conn.one_off_query("SELECT * FROM tag WHERE weight = 2").result(10)
    assert [(t.label, t.weight) for t in result["tag"]] == [("y", 2)]
    with pytest.raises(QueryError):
        conn.one_off_query("SELECT * FROM no_such_table").result(10)

    # a refused subscription reaches its on_error
    errors: list[Exception] = []
    failed = threading.Event()
    conn.subscription_builder().on_error(lambda ctx, error: (errors.append(error), failed.set())).subscribe(
        "SELECT * FROM nowhere"
    )
    assert failed.wait(10) and isinstance(errors[0], SubscriptionFailed)

    # unsubscribing the last set empties the cache and fires on_delete
    done = threading.Event()
    everything.unsubscribe_then(lambda ctx: done.set())
    assert done.wait(10)
    assert conn.db.tag.count() == 0 and conn.db.user_profile.count() == 0
    assert ("tag-", ("y", 2, "UnsubscribeApplied")) in log
    conn.disconnect()
    assert conn.wait_closed(10)


def test_asyncio_api_and_untyped_rows(server) -> None:
    publish(server.url, "chat", CHAT_MODULE)

    async def scenario() -> list[Any]:
        seen: list[Any] = []
        applied = asyncio.Event()
        conn = await (
            DbConnection.builder()
            .with_uri(server.url.replace("http://", "ws://"))
            .with_database_name("chat")
            .on_disconnect(lambda ctx, error: seen.append(("disconnected", error)))
            .build_async()
        )
        conn.db.message.on_insert(lambda ctx, m: seen.append((m.text, type(ctx.event))))
        conn.subscription_builder().on_applied(lambda ctx: applied.set()).subscribe_to_all_tables()
        await asyncio.wait_for(applied.wait(), 10)
        event = await conn.reducers.send_message(text="async hello")
        assert event.committed and event.args == ("async hello",)
        with pytest.raises(TypeError):
            conn.reducers.send_message("a", "b")
        rows = await conn.one_off_query("SELECT * FROM message")
        seen.append(tuple(rows["message"][0]._fields))
        conn.disconnect()
        await asyncio.wait_for(conn.run_async(), 10)
        return seen

    seen = asyncio.run(scenario())
    assert seen[0][0] == "async hello" and seen[0][1].__name__ == "ReducerEvent"
    assert seen[1] == ("id", "sender", "sent", "text")
    assert seen[2] == ("disconnected", None)


def test_connect_errors(server) -> None:
    with pytest.raises(ConnectError, match="No such database"):
        DbConnection.builder().with_uri(server.url).with_database_name("missing").build()
    publish(server.url, "chat", CHAT_MODULE)
    errors: list[BaseException] = []
    conn = (
        DbConnection.builder()
        .with_uri(server.url)
        .with_database_name("chat")
        .with_token("not-a-token")
        .on_connect_error(lambda ctx, error: errors.append(error))
    )
    with pytest.raises(ConnectError):
        conn.build()  # the schema route already refuses the token
    # a connection that is never driven still ends cleanly once run() processes its close
    ok = DbConnection.builder().with_uri(server.url).with_database_name("chat").build()
    ok.disconnect()
    ok.run()
    assert ok.wait_closed(0) and not ok.is_active
    assert errors == []  # build() raised before any connect error could be processed


def test_generated_python_bindings_call_procedures(server, bindings) -> None:
    module = ROOT / "tests" / "host" / "procedures_module.py"
    publish(server.url, "procs", module)
    procs = bindings(module, "procs_bindings")
    source = (Path(procs.__file__).parent / "procedures.py").read_text()
    assert "def add_two(self, lhs: int, rhs: int) -> Pending[int]:" in source
    conn = procs.DbConnection.builder().with_uri(server.url).with_database_name("procs").build()
    conn.run_threaded()
    try:
        assert conn.procedures.add_two(20, 22).result(30) == 42
        assert conn.procedures.call("add_two", lhs=1, rhs=2).result(30) == 3
        with pytest.raises(AttributeError, match="no procedure 'nope'"):
            conn.procedures.nope  # noqa: B018
    finally:
        conn.disconnect()


def test_generated_bindings_keep_indexes_named_like_handle_attributes(server, bindings) -> None:
    """Indexes whose accessors are `name`, `index`, `schema` and `on_insert` (attributes of every table handle)
    become `<accessor>_index` properties, and `count()`, `iter()`, `name`, ... keep working."""
    module = ROOT / "tests" / "client" / "colliding_module.py"
    publish(server.url, "colliding", module)
    colliding = bindings(module, "colliding_bindings")
    conn = colliding.DbConnection.builder().with_uri(server.url).with_database_name("colliding").build()
    untyped = DbConnection.builder().with_uri(server.url).with_database_name("colliding").build()
    applied = [threading.Event(), threading.Event()]
    for connection, event in zip((conn, untyped), applied, strict=True):
        connection.subscription_builder().on_applied(lambda ctx, event=event: event.set()).subscribe(
            "SELECT * FROM player"
        )
        connection.run_threaded()
    try:
        assert all(event.wait(10) for event in applied)
        conn.reducers.add_player("Ada", 1).result(10)
        conn.reducers.add_player("Bob", 2).result(10)
        for connection in (conn, untyped):
            player = connection.db.player
            wait_for(lambda player=player: player.count() == 2)
            assert player.name == "player" and player.schema.name == "player"
            assert sorted(row.name for row in player.iter()) == ["Ada", "Bob"]
            ada = player.name_index.find("Ada")
            assert ada is not None and (ada.count, ada.iter, ada.insert, ada.delete, ada.index) == (
                1,
                2,
                1,
                2,
                1,
            )
            assert [row.name for row in player.index_index.filter(2)] == ["Bob"]
            assert [row.name for row in player.schema_index.filter((2, 3))] == ["Bob"]
            assert [row.name for row in player.on_insert_index.filter((1, 2))] == ["Ada"]
            assert player.index("name").find("Bob").count == 2
        # the typed handle declares them (editors and mypy see them), the untyped one resolves them by name
        assert isinstance(type(conn.db.player).__dict__["name_index"], property)
        with pytest.raises(AttributeError, match="no attribute or index 'nope_index'"):
            untyped.db.player.nope_index  # noqa: B018
    finally:
        conn.disconnect()
        untyped.disconnect()


def test_run_raises_for_a_database_that_does_not_exist(server, bindings) -> None:
    """Typed bindings do not read the schema first, so build() succeeds; run() must not then return as if
    the session had ended normally."""
    chat = bindings(CHAT_MODULE, "chat_bindings_missing")
    conn = chat.DbConnection.builder().with_uri(server.url).with_database_name("no-such-db").build()
    with pytest.raises(ConnectError, match=r"no-such-db|No such database|not found"):
        conn.run()
    # with an on_connect_error callback the error is the callback's, and run() returns
    seen: list[BaseException] = []
    handled = (
        chat.DbConnection.builder()
        .with_uri(server.url)
        .with_database_name("no-such-db")
        .on_connect_error(lambda ctx, error: seen.append(error))
        .build()
    )
    handled.run()
    assert len(seen) == 1 and isinstance(seen[0], ConnectError)
