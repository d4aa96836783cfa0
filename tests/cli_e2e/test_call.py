"""`spacetime call`: JSON arguments, the reducer's error as exit 1, one-line errors for every mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import NOTES, User, assert_one_line_error, hint_of

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def notes(user: User, database: str) -> list[list[object]]:
    result = user("sql", database, "SELECT text, score FROM note", "--json")
    assert result.code == 0, result
    return json.loads(result.out)[0]["rows"]


def test_call_commits_with_json_arguments(alice: User, notes_db: str):
    result = alice("call", notes_db, "add_note", '"hello, world"', "-5")  # -5 is an argument, not an option
    assert result.code == 0, result
    assert result.out == ""
    assert notes(alice, notes_db) == [["hello, world", -5]]


def test_anyone_may_call_a_reducer(bob: User, notes_db: str, alice: User):
    assert bob("call", notes_db, "add_note", '"from bob"', "1").code == 0
    assert notes(alice, notes_db) == [["from bob", 1]]


def test_a_failing_reducer_exits_1_with_its_error_text(alice: User, notes_db: str):
    result = alice("call", notes_db, "fail", '"the disk is lava"')
    assert result.code == 1
    error = assert_one_line_error(result, "reducer fail failed")
    assert "the disk is lava" in error


def test_a_bare_word_is_a_string_argument_as_upstream(alice: User, notes_db: str):
    """Upstream's CLI quotes an argument of a string parameter unless it is a JSON string already
    (crates/cli/src/subcommands/call.rs); its quickstart calls `spacetime call ... set_name Alice`."""
    for text in ("hello", "123", '"quoted"', 'say "hi"'):
        assert alice("call", notes_db, "add_note", text, "1").code == 0, text
    assert sorted(notes(alice, notes_db)) == [["123", 1], ["hello", 1], ["quoted", 1], ['say "hi"', 1]]


def test_invalid_json_names_the_argument(alice: User, notes_db: str):
    result = alice("call", notes_db, "add_note", "hello", "one")
    error = assert_one_line_error(result, "argument 2 of add_note is not valid JSON", code=2)
    assert "'one'" in error


def test_numbers_are_checked_strictly(alice: User, notes_db: str):
    """A JSON string is not a number, nor is 1.0 an integer (upstream: serde_json refuses both)."""
    for text in ('"4"', "4.0"):
        result = alice("call", notes_db, "add_note", "x", text)
        assert_one_line_error(result, "argument `score`")
    assert notes(alice, notes_db) == []


def test_unknown_reducer_suggests_the_closest(alice: User, notes_db: str):
    """Upstream's wording (smoketest cluster/call.rs test_call_errors), then our hint."""
    result = alice("call", notes_db, "add_notes", '"x"', "1")
    assert result.code != 0
    identity = _identity(alice, notes_db)
    lines = result.err_lines
    assert lines[0] == (
        f"error: No such reducer OR procedure `add_notes` for database `{notes_db}` resolving to identity "
        f"`{identity}`."
    )
    assert lines[1:3] == ["", "A reducer with a similar name exists: `add_note`"]
    assert lines[3].startswith("hint: ") and "spacetime describe" in lines[3]


def _identity(user: User, database: str) -> str:
    from urllib.request import urlopen

    with urlopen(f"{user.url}/v1/database/{database}/identity") as response:
        return str(response.read().decode())


def test_wrong_argument_count_or_type_shows_the_signature(alice: User, notes_db: str):
    too_few = alice("call", notes_db, "add_note", '"only text"')
    assert_one_line_error(too_few, "expected 2 argument(s), got 1")
    assert hint_of(too_few) == "the reducer's signature is add_note(text: String, score: I32)"
    wrong_type = alice("call", notes_db, "add_note", "x", "[2]")
    assert_one_line_error(wrong_type, "argument `score`")
    out_of_range = alice("call", notes_db, "add_note", '"x"', str(2**40))
    assert_one_line_error(out_of_range, "invalid arguments for reducer `add_note`")
    assert notes(alice, notes_db) == []


def test_calling_a_missing_database(alice: User):
    result = alice("call", "no-such-db", "add_note", '"x"', "1")
    assert_one_line_error(result, f"No such database 'no-such-db' on {alice.url}")
    assert "spacetime publish no-such-db" in hint_of(result)


def test_a_module_refusing_the_connection(alice: User, db_name: str, tmp_path: Path):
    guarded = tmp_path / "guarded.py"
    guarded.write_text(
        NOTES.read_text()
        + '\n\n@reducer(lifecycle="client_connected")\ndef gate(ctx: ReducerContext) -> None:\n'
        + '    raise PermissionError("members only")\n'
    )
    alice.publish(db_name, guarded)
    result = alice("call", db_name, "add_note", '"x"', "1")
    error = assert_one_line_error(result, f"database '{db_name}' on {alice.url} refused the call")
    assert "members only" in error


def test_calling_a_lifecycle_reducer_gives_no_signature_hint(alice: User, db_name: str, tmp_path: Path):
    with_init = tmp_path / "with_init.py"
    with_init.write_text(
        NOTES.read_text()
        + '\n\n@reducer(lifecycle="init")\ndef init(ctx: ReducerContext) -> None:\n    pass\n'
    )
    alice.publish(db_name, with_init)
    result = alice("call", db_name, "init")
    assert_one_line_error(result)
    assert "signature" not in result.err, result.err


def test_a_bad_identity_argument_says_what_an_identity_looks_like(alice: User, db_name: str, tmp_path: Path):
    greeter = tmp_path / "greeter.py"
    greeter.write_text(
        NOTES.read_text()
        + "\n\nfrom spacetimedb import Identity\n\n\n@reducer\n"
        + "def greet(ctx: ReducerContext, who: Identity) -> None:\n    pass\n"
    )
    alice.publish(db_name, greeter)
    result = alice("call", db_name, "greet", '"nothex"')
    error = assert_one_line_error(result, "expected Identity, got 'nothex'")
    assert "an identity is 64 hex digits" in error and "U256" not in error
    assert alice("call", db_name, "greet", '"' + "c2" * 32 + '"').code == 0
