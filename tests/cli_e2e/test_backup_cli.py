"""`spacetime backup` and `spacetime restore`: a round trip, a damaged file, the owner rule, --clear."""

from __future__ import annotations

import json

import pytest

from .conftest import assert_one_line_error

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


def _notes(user, database):
    result = user("sql", database, "SELECT * FROM note", "--json")
    assert result.code == 0, result
    return sorted(map(tuple, json.loads(result.out)[0]["rows"]))


def test_backup_and_restore_round_trip(alice, bob, notes_db, db_name, tmp_path):
    for text in ("one", "two", "three"):
        assert alice("call", notes_db, "add_note", f'"{text}"', "1").code == 0
    archive = tmp_path / "notes.tar"
    result = alice("backup", notes_db, "-o", str(archive))
    assert result.code == 0, result
    assert f"Backed up {notes_db} at transaction offset" in result.out and archive.exists()
    assert not archive.with_name("notes.tar.part").exists()
    assert_one_line_error(alice("backup", notes_db, "-o", str(archive)), "exists")
    assert_one_line_error(bob("backup", notes_db, "-o", str(tmp_path / "bob.tar")), "not authorised")

    copy = db_name + "-copy"
    result = alice("restore", copy, "-i", str(archive), "--json")
    assert result.code == 0, result
    assert json.loads(result.out)["op"] == "created"
    assert _notes(alice, copy) == _notes(alice, notes_db)

    assert alice("call", copy, "add_note", '"four"', "4").code == 0
    assert_one_line_error(alice("restore", copy, "-i", str(archive)), "exists")
    assert_one_line_error(alice("restore", copy, "-i", str(archive), "--clear"), "without confirmation")
    result = alice("restore", copy, "-i", str(archive), "--clear", "-y")
    assert result.code == 0 and "Replaced database" in result.out, result
    assert _notes(alice, copy) == _notes(alice, notes_db)


def test_restore_refuses_a_damaged_archive_before_sending_it(alice, notes_db, db_name, tmp_path):
    archive = tmp_path / "notes.tar"
    assert alice("backup", notes_db, "-o", str(archive)).code == 0
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 3])
    fresh = db_name + "-new"
    message = assert_one_line_error(alice("restore", fresh, "-i", str(cut)), "is not an intact backup")
    assert "truncated" in message
    assert_one_line_error(
        alice("sql", fresh, "SELECT * FROM note"), "No such database"
    )  # nothing was created


def test_a_locked_database_refuses_a_replacing_restore(alice, notes_db, tmp_path):
    """Replacing a database's data deletes it, which `spacetime lock` forbids (as upstream's reset with
    --delete-data: crates/client-api/src/routes/database.rs, reset_database)."""
    archive = tmp_path / "notes.tar"
    assert alice("backup", notes_db, "-o", str(archive)).code == 0
    assert alice("call", notes_db, "add_note", '"after the backup"', "1").code == 0
    assert alice("lock", notes_db).code == 0
    refused = alice("restore", notes_db, "-i", str(archive), "--clear", "-y")
    assert_one_line_error(refused, "Database is locked and cannot be reset")
    assert _notes(alice, notes_db)[-1][1] == "after the backup"  # nothing was replaced
    assert alice("unlock", notes_db).code == 0
    assert alice("restore", notes_db, "-i", str(archive), "--clear", "-y").code == 0
