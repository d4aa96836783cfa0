"""Start-up recovery of the ``databases`` directory, state by state, from hand-made leftovers of crashes: what a
clear or a creation cut short leaves is finished or undone, orphans go, real databases stay, each with a log line.
(test_clear_atomicity.py reaches these states by killing a real server.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spacetimedb.controller import directories
from spacetimedb.sats import Identity
from spacetimedb.server.app import Server

HEX = "c2" + "ab" * 31
OTHER_HEX = "c2" + "cd" * 31


def make_database(path: Path, contents: str) -> Path:
    """A stand-in for a database directory, told apart by the contents of one file (only the test reads it)."""
    (path / "clog").mkdir(parents=True)
    (path / "which").write_text(contents)
    return path


def which(path: Path) -> str:
    return (path / "which").read_text()


@pytest.fixture
def databases(tmp_path: Path) -> Path:
    path = tmp_path / "databases"
    path.mkdir()
    return path


def recover(databases: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    with caplog.at_level(logging.WARNING, logger="spacetimedb.controller"):
        directories.recover(databases)
    return [record.getMessage() for record in caplog.records]


def test_an_unfinished_creation_is_removed_and_the_database_keeps_its_data(databases, caplog):
    make_database(databases / HEX, "old")
    make_database(databases / f".staging-{HEX}-0001", "new, half made")
    logged = recover(databases, caplog)
    assert sorted(p.name for p in databases.iterdir()) == [HEX] and which(databases / HEX) == "old"
    assert len(logged) == 1 and "unfinished database creation" in logged[0] and HEX in logged[0]


def test_a_finished_creation_not_yet_swapped_in_is_dropped(databases, caplog):
    make_database(databases / HEX, "old")
    make_database(databases / f".ready-{HEX}-0002", "new")
    logged = recover(databases, caplog)
    assert sorted(p.name for p in databases.iterdir()) == [HEX] and which(databases / HEX) == "old"
    assert len(logged) == 1 and "never took effect" in logged[0]


def test_a_crash_between_the_two_renames_of_the_swap_finishes_the_clear(databases, caplog):
    make_database(databases / f".replaced-{HEX}-0003", "old")
    make_database(databases / f".ready-{HEX}-0004", "new")
    logged = recover(databases, caplog)
    assert sorted(p.name for p in databases.iterdir()) == [HEX] and which(databases / HEX) == "new"
    assert len(logged) == 2
    assert "finished the interrupted clear" in logged[0] and "old data of a finished clear" in logged[1]


def test_an_old_database_moved_aside_with_nothing_in_its_place_is_restored(databases, caplog):
    make_database(databases / f".replaced-{HEX}-0005", "old")
    logged = recover(databases, caplog)
    assert sorted(p.name for p in databases.iterdir()) == [HEX] and which(databases / HEX) == "old"
    assert len(logged) == 1 and "restored" in logged[0]


def test_removing_leftovers_never_follows_links_planted_in_them(databases, tmp_path, caplog):
    outside = tmp_path / "precious"
    outside.write_text("keep me")
    make_database(databases / HEX, "new")
    replaced = make_database(databases / f".replaced-{HEX}-0006", "old")
    (replaced / "clog" / "link").symlink_to(outside)
    (databases / f".deleting-{OTHER_HEX}-0007").symlink_to(tmp_path)
    logged = recover(databases, caplog)
    assert sorted(p.name for p in databases.iterdir()) == [HEX] and which(databases / HEX) == "new"
    assert outside.read_text() == "keep me"
    assert len(logged) == 2


def test_entries_that_are_not_the_supervisors_stay(databases, caplog):
    (databases / "notes.txt").write_text("mine")
    (databases / ".staging-not-a-hex-name").mkdir()
    assert recover(databases, caplog) == []
    assert sorted(p.name for p in databases.iterdir()) == [".staging-not-a-hex-name", "notes.txt"]


def test_swap_in_replaces_the_live_database_and_removes_the_old_one(databases):
    live = make_database(databases / HEX, "old")
    ready = make_database(databases / f".ready-{HEX}-0008", "new")
    directories.swap_in(live, ready)
    assert sorted(p.name for p in databases.iterdir()) == [HEX] and which(live) == "new"


def test_the_server_removes_orphans_but_never_databases_its_control_database_knows(tmp_path, caplog):
    data_dir = tmp_path / "data"
    known = make_database(data_dir / "databases" / HEX, "known")
    # no control database yet: whatever is there is someone's data, not an orphan of it
    with caplog.at_level(logging.WARNING):
        server = Server(data_dir)
    try:
        server.control.register(Identity.from_hex(HEX), Identity.from_hex(OTHER_HEX), b"hash", "kept")
    finally:
        server.close()
    assert which(known) == "known"
    assert any("control database is new" in record.getMessage() for record in caplog.records)
    orphan = make_database(data_dir / "databases" / OTHER_HEX, "a creation cut short")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spacetimedb.controller"):
        Server(data_dir).close()
    assert not orphan.exists() and which(known) == "known"
    assert sorted(p.name for p in (data_dir / "databases").iterdir()) == [HEX]
    assert [r.getMessage() for r in caplog.records] == [
        f"removed database directory {OTHER_HEX}: the control database does not know it"
    ]
