"""`spacetime log` lists transactions; `spacetime sql --as-of` reads the database right after one of them."""

from __future__ import annotations

import json

import pytest

from .conftest import assert_one_line_error

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


def test_log_and_sql_as_of(alice, bob, notes_db):
    for text in ("first", "second"):
        assert alice("call", notes_db, "add_note", f'"{text}"', "1").code == 0
    result = alice("log", notes_db, "--from", "0", "--limit", "100", "--json")
    assert result.code == 0, result
    entries = json.loads(result.out)
    adds = [e for e in entries if e["reducer"] == "add_note"]
    assert len(adds) == 2 and adds[0]["tables"]["note"]["inserted"] == 1
    table = alice("log", notes_db, "-n", "3")
    assert table.code == 0 and table.out.splitlines()[0].split() == [
        "offset",
        "|",
        "time",
        "|",
        "reducer",
        "|",
        "caller",
        "|",
        "rows",
    ]

    after_first = str(adds[0]["offset"])
    result = alice("sql", notes_db, "SELECT text FROM note", "--as-of", after_first)
    assert result.code == 0, result
    assert "first" in result.out and "second" not in result.out
    assert f"as of transaction {after_first}: snapshot none + " in result.err
    now = alice("sql", notes_db, "SELECT text FROM note")
    assert "second" in now.out

    assert_one_line_error(
        alice("sql", notes_db, "SELECT * FROM note", "--as-of", "99999999"), "past the last durable"
    )
    assert_one_line_error(
        alice("sql", notes_db, "SELECT 1", "--as-of", "1", "--confirmed"), "--as-of", code=2
    )
    assert_one_line_error(
        bob("sql", notes_db, "SELECT * FROM note", "--as-of", after_first), "not authorised"
    )
    assert_one_line_error(bob("log", notes_db), "not authorised")
