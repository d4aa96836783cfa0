"""Port of upstream's ``crates/smoketests/tests/cluster/filtering.rs``: reducers that find rows by unique and
non-unique indexes and by scanning, after inserts and deletes. Module: ``modules/filtering.py``.

The calls and log reads go straight to the HTTP API (what ``spacetime call`` and ``spacetime logs`` send): there
are about a hundred."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import alice, shared_server
from tests.smoketests.support import http_call, http_log_messages, published

__all__ = ["alice", "shared_server"]

pytestmark = pytest.mark.slow


class Database:
    """One database's reducers and recent log, as upstream's ``test.call`` / ``test.logs``."""

    def __init__(self, user: User, name: str) -> None:
        self.user, self.name = user, name

    def call(self, reducer: str, *args: object) -> None:
        assert http_call(self.user, self.name, reducer, *args) == 200, reducer

    def logs(self, count: int) -> list[str]:
        return http_log_messages(self.user, self.name, count)

    def assert_logged(self, count: int, *lines: str, absent: tuple[str, ...] = ()) -> None:
        logs = self.logs(count)
        for line in lines:
            assert any(line in message for message in logs), (line, logs)
        for line in absent:
            assert not any(line in message for message in logs), (line, logs)


def test_filtering(alice: User) -> None:
    db = Database(alice, published(alice, "filtering"))
    db.call("insert_person", 23, "Alice", "al")
    db.call("insert_person", 42, "Bob", "bo")
    db.call("insert_person", 64, "Bob", "b2")

    db.call("find_person", 23)
    db.assert_logged(2, "UNIQUE FOUND: id 23: Alice")
    db.call("find_person_by_name", "Bob")
    db.assert_logged(4, "UNIQUE FOUND: id 42: Bob aka bo", "UNIQUE FOUND: id 64: Bob aka b2")
    for reducer in ("find_person", "find_person_read_only"):
        db.call(reducer, 43)
        db.assert_logged(2, "UNIQUE NOT FOUND: id 43")
    for reducer in ("find_person_by_nick", "find_person_by_nick_read_only"):
        db.call(reducer, "al")
        db.assert_logged(2, "UNIQUE FOUND: id 23: al")

    db.call("delete_person", 23)
    for reducer in ("find_person", "find_person_read_only"):
        db.call(reducer, 23)
        db.assert_logged(2, "UNIQUE NOT FOUND: id 23")
    for reducer in ("find_person_by_nick", "find_person_by_nick_read_only"):
        db.call(reducer, "al")
        db.assert_logged(2, "UNIQUE NOT FOUND: nick al")

    db.call("insert_nonunique_person", 23, "Alice", True)
    db.call("insert_nonunique_person", 42, "Bob", True)
    for reducer in ("find_nonunique_person", "find_nonunique_person_read_only"):
        db.call(reducer, 23)
        db.assert_logged(2, "NONUNIQUE FOUND: id 23: Alice")
    for reducer in ("find_nonunique_person", "find_nonunique_person_read_only"):
        db.call(reducer, 43)
        db.assert_logged(2, absent=("NONUNIQUE NOT FOUND: id 43",))

    db.call("insert_nonunique_person", 64, "Jibbitty", False)
    db.call("find_nonunique_humans")
    db.assert_logged(4, "HUMAN FOUND: id 23: Alice", "HUMAN FOUND: id 42: Bob")
    db.call("find_nonunique_non_humans")
    db.assert_logged(2, "NON-HUMAN FOUND: id 64: Jibbitty")

    db.call("insert_nonunique_person", 23, "Claire", True)
    for reducer in ("find_nonunique_person", "find_nonunique_person_read_only"):
        db.call(reducer, 23)
        db.assert_logged(4, "NONUNIQUE FOUND: id 23: Alice", "NONUNIQUE FOUND: id 23: Claire")

    # things present in an index but no longer in the table
    for id, name, nick in ((101, "Fee", "fee"), (102, "Fi", "fi"), (103, "Fo", "fo"), (104, "Fum", "fum")):
        db.call("insert_person", id, name, nick)
    db.call("delete_person", 103)
    for reducer in ("find_person", "find_person_read_only"):
        db.call(reducer, 104)
        db.assert_logged(2, "UNIQUE FOUND: id 104: Fum")

    for id, given in ((7, "James"), (79, "Gold"), (1, "Hydrogen"), (100, "Whiskey")):
        db.call("insert_indexed_person", id, given, "Bond")
    db.call("delete_indexed_person", 100)
    for reducer in ("find_indexed_people", "find_indexed_people_read_only"):
        db.call(reducer, "Bond")
        db.assert_logged(
            10,
            "INDEXED FOUND: id 7: Bond, James",
            "INDEXED FOUND: id 79: Bond, Gold",
            "INDEXED FOUND: id 1: Bond, Hydrogen",
            absent=("INDEXED FOUND: id 100: Bond, Whiskey",),
        )

    db.call("insert_identified_person", 23, "Alice")
    db.call("find_identified_person", 23)
    db.assert_logged(2, "IDENTIFIED FOUND: Alice")

    # the second row repeats the unique id and nick (not the name): the insert is refused
    db.call("insert_person_twice", 23, "Alice", "al")
    db.assert_logged(2, "UNIQUE CONSTRAINT VIOLATION ERROR: id = 23, nick = al")
