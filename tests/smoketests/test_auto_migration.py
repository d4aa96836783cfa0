"""Port of upstream's ``crates/smoketests/tests/cluster/auto_migration.rs``: which module updates migrate the data
automatically, and what they do to connected clients. Modules: ``modules/auto_migration_*.py``.

Upstream publishes these updates with ``--break-clients``; here ``--yes`` accepts the migration plan (the flag
itself is the CLI's subject, ported with the CLI smoketests)."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.runtime_helpers import Smoke
from tests.smoketests.support import fresh_name, log_messages, module_path, owner

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow

# upstream subscribes 20 clients; 3 show the same (each is disconnected, and the new module sees each go)
NUM_SUBSCRIBERS = 3


def publish(owner: User, database: str, module: str) -> None:
    result = owner("publish", database, "-p", str(module_path(module)), "--yes")
    assert result.code == 0, result


def call(owner: User, database: str, *args: str) -> None:
    result = owner("call", database, *args)
    assert result.code == 0, result


def test_reject_schema_changes(owner: User) -> None:
    """Adding a column without a default is refused without -c."""
    database = fresh_name()
    publish(owner, database, "auto-migration-simple")
    refused = owner("publish", database, "-p", str(module_path("auto-migration-incompatible")), "--yes")
    assert refused.code != 0, refused


def test_add_table_auto_migration(owner: User) -> None:
    """Adding a table, a variant at the end of an enum and AutoInc on a column is automatic, keeps the rows, and
    keeps subscribers subscribed (4 updates: 3 before the update, 1 after)."""
    database = fresh_name()
    publish(owner, database, "auto-migration-add-table-initial")
    subscription = Smoke(owner, database).subscribe("select * from person", n=4)
    for name in ("Robert", "Julie", "Samantha"):
        call(owner, database, "add_person", name, "Student")
    call(owner, database, "print_persons", "BEFORE")
    logs = log_messages(owner, database)
    for name in ("Samantha", "Julie", "Robert"):
        assert f"BEFORE: {name} - Student" in logs, logs

    publish(owner, database, "auto-migration-add-table-updated")
    call(owner, database, "add_person", "Husserl", "Student")
    assert len(subscription.collect()) == 4

    call(owner, database, "add_person", "Husserl", "Professor")
    call(owner, database, "add_book", "1234567890")
    call(owner, database, "print_persons", "AFTER_PERSON")
    call(owner, database, "print_books", "AFTER_BOOK")
    logs = log_messages(owner, database)
    for line in (
        "AFTER_PERSON: Samantha - Student",
        "AFTER_PERSON: Julie - Student",
        "AFTER_PERSON: Robert - Student",
        "AFTER_PERSON: Husserl - Professor",
        "AFTER_BOOK: 1234567890",
    ):
        assert line in logs, logs


def test_add_table_columns(owner: User) -> None:
    """Adding columns with defaults (twice) is automatic: the module log says "Disconnecting all users", every
    subscriber is disconnected (the new module's client_disconnected runs for each, and for the call's own
    connection), and the rows get the defaults."""
    database = fresh_name()
    publish(owner, database, "auto-migration-simple")
    # no number of updates: each runs until the migration disconnects it
    subscriptions = [
        Smoke(owner, database).subscribe("select * from person", n=None) for _ in range(NUM_SUBSCRIBERS)
    ]
    call(owner, database, "add_person", "Robert")

    publish(owner, database, "auto-migration-add-columns")
    call(owner, database, "print_persons", "FIRST_UPDATE")
    logs = log_messages(owner, database)
    assert any("Disconnecting all users" in line for line in logs), logs
    assert 'FIRST_UPDATE: Person { name: "Robert", age: 0, mass: 19 }' in logs, logs
    assert logs.count("FIRST_UPDATE: client disconnected") == NUM_SUBSCRIBERS + 1, logs

    call(owner, database, "add_person", "Robert2")
    for subscription in subscriptions:
        subscription.collect()  # each ended cleanly when the server disconnected it

    publish(owner, database, "auto-migration-add-columns-again")
    call(owner, database, "print_persons", "UPDATE_2")
    logs = log_messages(owner, database)
    assert 'UPDATE_2: Person { name: "Robert2", age: 70, mass: 180, height: 160 }' in logs, logs


def test_remove_primary_key_issue_3934(owner: User) -> None:
    """Upstream issue #3934: removing a primary key is automatic, and so is the next update after it."""
    database = fresh_name()
    publish(owner, database, "auto-migration-with-primary-key")
    publish(owner, database, "auto-migration-without-primary-key")
    publish(owner, database, "auto-migration-without-primary-key-v2")


def test_automigrate_reschema_event_table_arbitrarily(owner: User) -> None:
    """An event table stores nothing, so any change of its columns is automatic, and back again."""
    database = fresh_name()
    publish(owner, database, "auto-migration-event-table-before")
    publish(owner, database, "auto-migration-event-table-after")
    publish(owner, database, "auto-migration-event-table-before")
