"""An SQL write runs under the query time budget, and its commit must not be cut in half by it: a budget that runs
out while the statement commits leaves it committed, told to subscribers and reported as done, and stops the
script's next statement; one that ran out before leaves nothing behind. Either way the host writes again at once."""

import time
from collections.abc import Iterator
from typing import Any

import pytest

from spacetimedb.host import sql_runner
from spacetimedb.host.database import Database, DatabaseOptions
from spacetimedb.host.module_host import HostOptions, TransactionEvent
from spacetimedb.host.sql_runner import execute, run_sql
from spacetimedb.sql.errors import SqlTimeoutError

from .helpers import CHAT, DB, OWNER, LocalDatabases, call, rows

BUDGET = 0.2


@pytest.fixture
def chat() -> Iterator[Database]:
    databases = LocalDatabases(None, DatabaseOptions(host=HostOptions(reducer_budget_seconds=BUDGET)))
    try:
        databases.publish(DB, OWNER, CHAT)
        database = databases.database(DB)
        assert call(database.host, "send_message", "before").ok
        subscribe_to_messages(database)
        yield database
    finally:
        databases.shutdown()


def subscribe_to_messages(database: Database) -> None:
    """A subscriber to ``message``, so that each commit that changes it is told to listeners."""
    host = database.host

    def work() -> None:
        with host.db.read_tx() as tx:
            host.views.subscribe_set(host.subscriptions, 1, 1, ["SELECT * FROM message"], OWNER, False, tx)

    database.on_host_thread(work)


def sql_under_budget(database: Database, text: str) -> str:
    host = database.host

    def work() -> str:
        body, _ = host.run_query("the SQL query", lambda: run_sql(host, text, OWNER, True))
        return body

    return database.on_host_thread(work)  # type: ignore[no-any-return]


def spin(seconds: float) -> None:
    """Busy for ``seconds`` in Python code, where a pending timeout would be raised."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        pass


def test_a_budget_that_runs_out_during_the_commit_leaves_the_write_committed_and_told(chat: Database) -> None:
    heard: list[TransactionEvent] = []

    def slow_listener(event: TransactionEvent) -> None:
        spin(3 * BUDGET)  # the statement's budget runs out here, inside its commit
        heard.append(event)

    chat.host.add_transaction_listener(slow_listener)
    sql_under_budget(chat, "UPDATE message SET text = 'edited'")
    assert len(heard) == 1 and heard[0].offset is not None
    assert [m[3] for m in rows(chat.host, "message")] == ["edited"]
    assert call(chat.host, "send_message", "after").ok  # the write lock was released


def test_a_budget_that_ran_out_during_a_commit_stops_the_next_statement(chat: Database) -> None:
    heard: list[TransactionEvent] = []

    def slow_listener(event: TransactionEvent) -> None:
        spin(3 * BUDGET)
        heard.append(event)

    chat.host.add_transaction_listener(slow_listener)
    with pytest.raises(SqlTimeoutError, match="time budget"):
        sql_under_budget(chat, "UPDATE message SET text = 'edited'; DELETE FROM message")
    assert len(heard) == 1  # the first statement committed and was told; the second never began
    assert [m[3] for m in rows(chat.host, "message")] == ["edited"]
    assert call(chat.host, "send_message", "after").ok


def test_a_budget_that_runs_out_before_the_commit_leaves_nothing(
    chat: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_execute(*args: Any, **kwargs: Any) -> Any:
        result = execute(*args, **kwargs)
        spin(3 * BUDGET)  # the statement's own work overruns, after it changed the row in its transaction
        return result

    monkeypatch.setattr(sql_runner, "execute", slow_execute)
    with pytest.raises(SqlTimeoutError, match="time budget"):
        sql_under_budget(chat, "UPDATE message SET text = 'edited'")
    assert [m[3] for m in rows(chat.host, "message")] == ["before"]
    assert call(chat.host, "send_message", "after").ok  # the write lock was released
