"""`spacetime sql`: psql-style tables, --json, DML by the owner only, private tables, the interactive prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import User, assert_one_line_error

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_select_prints_a_psql_table(alice: User, notes_db: str):
    alice("call", notes_db, "add_note", '"first"', "1")
    alice("call", notes_db, "add_note", '"second note"', "22")
    result = alice("sql", notes_db, "SELECT * FROM note")
    assert result.code == 0, result
    assert result.out.splitlines() == [
        " id | text          | score",
        "----+---------------+-------",
        ' 1  | "first"       | 1',
        ' 2  | "second note" | 22',
    ]


def test_json_output_is_the_servers_reply(alice: User, notes_db: str):
    alice("call", notes_db, "add_note", '"n"', "3")
    result = alice("sql", notes_db, "SELECT text, score FROM note; SELECT id FROM note", "--json")
    assert result.code == 0, result
    first, second = json.loads(result.out)
    assert [e["name"] for e in first["schema"]["elements"]] == [{"some": "text"}, {"some": "score"}]
    assert first["rows"] == [["n", 3]] and second["rows"] == [[1]]
    # upstream's spelling (crates/cli/src/subcommands/sql.rs, --format json): the same reply
    upstream = alice("sql", notes_db, "SELECT text, score FROM note; SELECT id FROM note", "--format", "json")
    assert json.loads(upstream.out)[0]["rows"] == first["rows"]


def test_the_owner_may_change_rows_and_read_private_tables(alice: User, notes_db: str):
    inserted = alice("sql", notes_db, "INSERT INTO secret (id, value) VALUES (1, 'hush')")
    assert inserted.code == 0, inserted
    assert inserted.out.strip().startswith("(0 rows) [inserted: 1, server: ")  # a statement without a table
    updated = alice("sql", notes_db, "UPDATE secret SET value = 'HUSH' WHERE id = 1")
    assert "updated: 1" in updated.out
    rows = alice("sql", notes_db, "SELECT value FROM secret")
    assert rows.out.splitlines()[2].strip() == '"HUSH"'
    deleted = alice("sql", notes_db, "DELETE FROM secret")
    assert "deleted: 1" in deleted.out


def test_others_may_only_read_public_tables(alice: User, bob: User, notes_db: str):
    alice("call", notes_db, "add_note", '"public"', "1")
    assert bob("sql", notes_db, "SELECT text FROM note").out.splitlines()[2].strip() == '"public"'
    private = bob("sql", notes_db, "SELECT * FROM secret")
    assert_one_line_error(private, "no such table: `secret`")
    dml = bob("sql", notes_db, "DELETE FROM note")
    assert_one_line_error(dml, "is not authorized to run SQL DML statements")
    assert alice("sql", notes_db, "SELECT text FROM note").out.count('"public"') == 1


def test_sql_errors_are_one_line(alice: User, notes_db: str):
    assert_one_line_error(alice("sql", notes_db, "SELEKT 1"), "")
    assert_one_line_error(alice("sql", notes_db, "SELECT nope FROM note"), "nope")
    assert_one_line_error(alice("sql", notes_db), "give either a QUERY or --interactive", code=2)
    assert_one_line_error(alice("sql", "no-such-db", "SELECT 1"), "No such database")


def test_interactive_prompt_reads_statements_until_quit(alice: User, notes_db: str, tmp_path: Path):
    alice("call", notes_db, "add_note", '"in the repl"', "5")
    script = "SELECT text FROM note\nSELECT * FROM missing\n\\dt\n\\q\nSELECT 'never run' FROM note\n"
    result = alice("sql", notes_db, "--interactive", input=script)
    assert result.code == 0, result
    assert '"in the repl"' in result.out and "(1 row)" in result.out and "Roundtrip time:" in result.out
    assert "error: no such table: `missing`" in result.err  # an error does not end the session
    assert '"note"' in result.out and '"secret"' in result.out  # \dt lists the tables
    assert "never run" not in result.out


def test_interactive_prompt_for_a_missing_database_fails_at_once(alice: User):
    result = alice("sql", "no-such-db", "--interactive", input="SELECT 1\n")
    assert_one_line_error(result, "database 'no-such-db'")
    assert result.out == ""
