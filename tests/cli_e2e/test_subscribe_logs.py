"""`spacetime subscribe` (JSON lines over the v1.json WebSocket) and `spacetime logs` (-n, --json, -f)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from .conftest import NOTES, Result, User, assert_one_line_error, hint_of

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
# Where the `shout` reducer logs: a record names the function, the file and the line.
SHOUT_AT = "shout notes.py:{}".format(
    next(n for n, line in enumerate(NOTES.read_text().splitlines(), 1) if "log.warn(message)" in line)
)


class LineReader:
    """Reads a process's stdout on a thread, so tests can wait for a line with a bound."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout], daemon=True).start()

    def next_line(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout).rstrip("\n")
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s") from None

    def finish(self, timeout: float = 30) -> Result:
        self.process.wait(timeout=timeout)
        assert self.process.stderr is not None
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return Result(self.process.returncode, "".join(rest), self.process.stderr.read())


@pytest.fixture
def readers() -> Iterator[list[LineReader]]:
    """LineReaders whose processes are killed after the test, whatever happened (`logs -f` never ends)."""
    started: list[LineReader] = []
    yield started
    for reader in started:
        if reader.process.poll() is None:
            reader.process.kill()
            reader.process.wait(timeout=30)


# -- subscribe ---------------------------------------------------------------------------------------------


def test_subscribe_prints_initial_rows_and_n_updates(
    alice: User, bob: User, notes_db: str, readers: list[LineReader]
):
    alice("call", notes_db, "add_note", '"before"', "1")
    reader = LineReader(
        alice.start(
            "subscribe", notes_db, "SELECT * FROM note", "-n", "2", "-t", "60", "--print-initial-update"
        )
    )
    readers.append(reader)
    initial = json.loads(reader.next_line())
    assert initial == {"note": {"deletes": [], "inserts": [{"id": 1, "text": "before", "score": 1}]}}
    assert bob("call", notes_db, "add_note", '"live"', "2").code == 0
    update = json.loads(reader.next_line())
    assert update == {"note": {"deletes": [], "inserts": [{"id": 2, "text": "live", "score": 2}]}}
    assert alice("sql", notes_db, "DELETE FROM note WHERE id = 1").code == 0
    deleted = json.loads(reader.next_line())
    assert deleted == {"note": {"deletes": [{"id": 1, "text": "before", "score": 1}], "inserts": []}}
    finished = reader.finish()
    assert finished.code == 0, finished  # exits by itself after -n updates
    assert finished.out == ""


def test_subscribe_times_out_before_n_updates_with_an_error(alice: User, notes_db: str):
    started = time.monotonic()
    result = alice("subscribe", notes_db, "SELECT * FROM note", "-n", "1", "-t", "1")
    assert_one_line_error(result, "timed out after 1s having received 0 of 1 updates")
    assert time.monotonic() - started < 30
    quiet = alice("subscribe", notes_db, "SELECT * FROM note", "-t", "1")  # no -n: a timeout is the plan
    assert quiet.code == 0 and quiet.out == "", quiet


def test_subscribe_errors(alice: User, notes_db: str):
    bad_query = alice("subscribe", notes_db, "SELECT * FROM missing", "-t", "30")
    assert_one_line_error(bad_query, "the subscription failed: no such table: `missing`")
    missing_db = alice("subscribe", "no-such-db", "SELECT * FROM note", "-t", "30")
    assert_one_line_error(missing_db, "database 'no-such-db'")
    assert_one_line_error(alice("subscribe", notes_db), "Missing argument 'QUERY...'", code=2)


# -- logs -----------------------------------------------------------------------------------------------------


def test_logs_prints_readable_records_and_json(alice: User, notes_db: str):
    alice("call", notes_db, "shout", '"first shout"')
    alice("call", notes_db, "fail", '"it broke"')
    last_two = alice("logs", notes_db, "-n", "2")
    assert last_two.code == 0, last_two
    lines = last_two.out.splitlines()
    # TIME LEVEL: function file:line: message; a failure's record goes on with the module's traceback
    assert lines[0].endswith(f"WARN: {SHOUT_AT}: first shout"), lines
    assert " ERROR: fail notes.py:" in lines[1] and lines[1].endswith("ValueError: it broke")
    assert lines[2:] == [
        "Traceback (most recent call last):",
        f'  File "notes.py", line {lines[1].split("notes.py:")[1].split(":")[0]}, in fail',
        "    raise ValueError(reason)",
        "ValueError: it broke",
    ]
    assert lines[0][:4].isdigit() and lines[0][19] == "." and "Z " in lines[0]

    raw = alice("logs", notes_db, "-n", "1", "--json")
    record = json.loads(raw.out)
    assert record["level"] == "Error" and record["function"] == "fail"
    assert record["message"].startswith("ValueError: it broke\nTraceback (most recent call last):\n")

    everything = alice("logs", notes_db)
    assert "Database initialized" in everything.out and len(everything.out.splitlines()) > 2


def test_logs_follow_shows_new_records_until_ctrl_c(alice: User, notes_db: str, readers: list[LineReader]):
    alice("call", notes_db, "shout", '"before following"')
    reader = LineReader(alice.start("logs", notes_db, "-f", "-n", "1"))
    readers.append(reader)
    # The last record arriving proves the stream is open: what is logged from now on must follow.
    assert reader.next_line().endswith("before following")
    alice("call", notes_db, "shout", '"while following"')
    assert reader.next_line().endswith(f"WARN: {SHOUT_AT}: while following")
    alice("call", notes_db, "shout", '"and again"')
    assert reader.next_line().endswith("and again")
    reader.process.send_signal(signal.SIGINT)
    finished = reader.finish()
    assert finished.code == 130
    assert finished.err == ""  # quietly


def test_only_the_owner_may_read_the_logs(bob: User, notes_db: str):
    result = bob("logs", notes_db)
    assert_one_line_error(result, f"not authorised on database '{notes_db}'")
    assert "owner" in hint_of(result)


def test_subscribe_ends_when_the_database_is_deleted(alice: User, notes_db: str, readers: list[LineReader]):
    reader = LineReader(
        alice.start("subscribe", notes_db, "SELECT * FROM note", "-n", "3", "--print-initial-update")
    )
    readers.append(reader)
    assert json.loads(reader.next_line()) == {"note": {"deletes": [], "inserts": []}}
    assert alice("delete", notes_db, "-y").code == 0
    finished = reader.finish()
    assert_one_line_error(finished, "the server closed the subscription")
    assert "after 0 of 3 updates" in finished.err


LOOP = """from spacetimedb import ReducerContext, reducer


def lookup(key: str) -> str:
    return {}[key]


@reducer
def tick(ctx: ReducerContext) -> None:
    lookup("missing")
"""


def test_a_reducer_exception_reaches_the_caller_typed_and_the_log_with_its_traceback(
    alice: User, bob: User, db_name: str, tmp_path
):
    loop = tmp_path / "loop.py"
    loop.write_text(LOOP)
    alice.publish(db_name, loop)
    failed = bob("call", db_name, "tick")
    error = assert_one_line_error(failed, "reducer tick failed")
    assert error.endswith("KeyError: 'missing'"), error
    assert "Traceback" not in failed.err  # the caller gets the message, not the module's code

    logged = alice("logs", db_name, "-n", "20")
    assert logged.code == 0, logged
    assert "tick loop.py:5" in logged.out, logged.out  # the innermost line of the module's code
    assert 'File "loop.py", line 10, in tick' in logged.out, logged.out
    assert 'File "loop.py", line 5, in lookup' in logged.out, logged.out
    assert "module.py" not in logged.out
