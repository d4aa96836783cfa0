"""spacetimedb.testing.TestDatabase: a module's reducers run in memory, as chosen identities at chosen times,
with scheduled reducers driven by the test's clock alone."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from spacetimedb import Identity, Timestamp
from spacetimedb.testing import DEFAULT_START, LaunchError, ReducerError, TestDatabase, user_identity

MODULE = """
from typing import Annotated

import spacetimedb
from spacetimedb import (
    AutoInc, Identity, PrimaryKey, ReducerContext, ScheduleAt, TimeDuration, Timestamp, reducer, table, u64,
)


@table
class Entry:
    id: Annotated[u64, PrimaryKey, AutoInc]
    who: Identity
    at: Timestamp
    text: str


@table
class Presence:
    who: Annotated[Identity, PrimaryKey]
    online: bool


@reducer
def tick(ctx: ReducerContext, job: "Job") -> None:
    ctx.db.entry.insert(Entry(id=0, who=ctx.sender, at=ctx.timestamp, text=job.text))


@table(scheduled=tick)
class Job:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    scheduled_at: ScheduleAt
    text: str


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    print("init at", ctx.timestamp.micros)


@reducer(lifecycle="client_connected")
def connected(ctx: ReducerContext) -> None:
    ctx.db.presence.insert(Presence(who=ctx.sender, online=True))


@reducer(lifecycle="client_disconnected")
def disconnected(ctx: ReducerContext) -> None:
    ctx.db.presence.who.update(Presence(who=ctx.sender, online=False))


@reducer
def write(ctx: ReducerContext, text: str) -> None:
    ctx.db.entry.insert(Entry(id=0, who=ctx.sender, at=ctx.timestamp, text=text))
    spacetimedb.log.info(f"wrote {text}")
    if text == "boom":
        raise ValueError("boom is not allowed")


@reducer
def every(ctx: ReducerContext, seconds: u64, text: str) -> None:
    interval = ScheduleAt.interval(TimeDuration.from_seconds(seconds))
    ctx.db.job.insert(Job(scheduled_id=0, scheduled_at=interval, text=text))


@reducer
def once(ctx: ReducerContext, seconds: u64, text: str) -> None:
    at = ScheduleAt.time(ctx.timestamp + TimeDuration.from_seconds(seconds))
    ctx.db.job.insert(Job(scheduled_id=0, scheduled_at=at, text=text))
"""


@pytest.fixture
def db(tmp_path: Path):
    path = tmp_path / "journal.py"
    path.write_text(MODULE, encoding="utf-8")
    with TestDatabase.load(path) as database:
        yield database


def texts(db: TestDatabase) -> list[tuple[str, int]]:
    """(text, µs after the start) of every entry, in id order."""
    rows = sorted(db.rows("entry"), key=lambda row: row.id)
    return [(row.text, row.at.micros - DEFAULT_START.micros) for row in rows]


def test_calls_run_as_the_given_identity_and_rows_are_the_modules_own_classes(db: TestDatabase):
    alice = db.user("alice")
    db.call("write", "hello", sender=alice)
    db.call("write", "from the owner")
    rows = sorted(db.rows("entry"), key=lambda row: row.id)
    assert all(isinstance(row, db.module.Entry) for row in rows)
    assert [(row.who, row.text) for row in rows] == [(alice, "hello"), (db.owner, "from the owner")]
    assert db.user("alice") == user_identity("alice") != db.user("bob")
    assert isinstance(alice, Identity) and alice.to_hex().startswith("c200")


def test_calls_run_at_the_clock_or_at_the_given_time(db: TestDatabase):
    assert db.now == DEFAULT_START
    db.call("write", "first")
    db.call("write", "later", at=Timestamp(DEFAULT_START.micros + 5_000_000))
    db.call("write", "as a datetime", at=dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC))
    assert texts(db) == [("first", 0), ("later", 5_000_000), ("as a datetime", 60_000_000)]
    with pytest.raises(ValueError, match="only moves forward"):
        db.call("write", "the past", at=DEFAULT_START)
    with pytest.raises(ValueError, match="naive datetime"):
        db.advance_to(dt.datetime(2030, 1, 1))
    # init ran at the start too
    assert f"init at {DEFAULT_START.micros}" in [line.message for line in db.logs()]


def test_scheduled_reducers_run_only_when_the_clock_passes_them(db: TestDatabase):
    db.call("once", 10, "once")
    db.call("every", 3, "every")
    time.sleep(0.3)  # real time passing changes nothing: the test owns the clock
    assert texts(db) == []
    assert db.advance(2.999) == 0
    assert db.advance(dt.timedelta(milliseconds=1)) == 1
    assert db.advance(7) == 3  # every at 6 and 9, once at 10, each at its own time
    assert texts(db) == [
        ("every", 3_000_000),
        ("every", 6_000_000),
        ("every", 9_000_000),
        ("once", 10_000_000),
    ]
    assert {row.who for row in db.rows("entry")} == {db.identity}
    assert [job.text for job in db.rows("job")] == ["every"]  # the one-shot row is gone
    assert db.now == Timestamp(DEFAULT_START.micros + 10_000_000)
    with pytest.raises(ValueError, match="only moves forward"):
        db.advance(-1)


def test_a_failing_call_raises_its_message_rolls_back_and_is_logged(db: TestDatabase):
    with pytest.raises(ReducerError, match=r"^ValueError: boom is not allowed$") as failure:
        db.call("write", "boom")
    assert failure.value.reducer == "write"
    assert db.rows("entry") == []
    errors = [line for line in db.logs() if line.level == "ERROR"]
    assert [(line.function, line.message.splitlines()[0]) for line in errors] == [
        ("write", "ValueError: boom is not allowed")
    ]
    assert errors[0].line is not None
    # the log (not the caller) gets the traceback through the module's code, under the module's file name
    trace = errors[0].message.splitlines()[1:]
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[1] == f'  File "journal.py", line {errors[0].line}, in write'
    assert trace[2:] == ['    raise ValueError("boom is not allowed")', "ValueError: boom is not allowed"]
    # what was logged before the failure is kept, as on a server
    assert ("INFO", "write", "wrote boom") in [
        (line.level, line.function, line.message) for line in db.logs()
    ]


def test_bad_calls_get_the_messages_a_caller_would(db: TestDatabase):
    with pytest.raises(ReducerError, match="no such reducer: `nope`"):
        db.call("nope")
    with pytest.raises(ReducerError, match=r"expected 1 argument\(s\), got 2"):
        db.call("write", "a", "b")
    with pytest.raises(ReducerError, match="out of range for U64"):
        db.call("once", -1, "x")
    with pytest.raises(ReducerError, match="cannot be called directly"):
        db.call("init")
    with pytest.raises(KeyError, match=r"no table `nope` \(its tables: entry, job, presence\)"):
        db.rows("nope")


def test_connect_and_disconnect_run_the_lifecycle_reducers(db: TestDatabase):
    bob = db.user("bob")
    connection = db.connect(bob)
    assert [(row.who, row.online) for row in db.rows("presence")] == [(bob, True)]
    db.disconnect(connection, bob)
    assert [(row.who, row.online) for row in db.rows("presence")] == [(bob, False)]
    with pytest.raises(ReducerError, match="unique constraint") as refused:
        db.connect(bob)  # connected() inserts a second presence row for bob
    assert refused.value.reducer == "client_connected"


def test_a_module_that_does_not_load_says_why(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no module at"):
        TestDatabase.load(tmp_path / "missing.py")
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import spacetimedb\n\n@spacetimedb.table\nclass T:\n    when: object\n", encoding="utf-8"
    )
    with pytest.raises(LaunchError, match="`object` is not a column or argument type"):
        TestDatabase.load(broken)


def test_python_logging_stays_in_the_test_process(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "logs.py"
    path.write_text(
        "import logging\nfrom spacetimedb import ReducerContext, reducer\n\n\n@reducer\n"
        "def shout(ctx: ReducerContext) -> None:\n    logging.getLogger('mine').warning('loud')\n"
        "    print('printed')\n",
        encoding="utf-8",
    )
    with caplog.at_level("WARNING", logger="mine"), TestDatabase.load(path) as db:
        db.call("shout")
        assert [(line.level, line.message) for line in db.logs() if line.function == "shout"] == [
            ("INFO", "printed")
        ]
    assert [record.getMessage() for record in caplog.records if record.name == "mine"] == ["loud"]
