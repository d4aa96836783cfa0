"""Port of upstream's ``crates/smoketests/tests/cluster/rls.rs``: row-level security rules filter what each
identity reads, must be on public tables, and changing them disconnects clients. Modules: ``modules/rls*.py``
(upstream's ``rls-with-filter`` is the same module as ``rls``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.support import (
    assert_sql,
    call,
    fresh_name,
    log_messages,
    module_path,
    owner,
    publish,
    published,
)

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow


def test_rls_rules(owner: User, tmp_path: Path) -> None:
    """Each identity sees only its own row of ``users``; a new identity sees none."""
    database = published(owner, "rls")
    call(owner, database, "add_user", "Alice")
    bob = User(tmp_path / "bob", owner.url)
    call(bob, database, "add_user", "Bob")
    assert_sql(bob, database, "SELECT name FROM users", ' name\n-------\n "Bob"')
    carol = User(tmp_path / "carol", owner.url)
    assert_sql(carol, database, "SELECT name FROM users", " name\n------")


def test_publish_fails_for_rls_on_private_table(owner: User) -> None:
    refused = owner("publish", fresh_name(), "-p", str(module_path("rls-broken-private-table")), "--yes")
    assert refused.code != 0, refused


def test_rls_disconnect_if_change(owner: User) -> None:
    """Adding a rule is automatic, stores the rule, and disconnects all users (the module log says so)."""
    database = published(owner, "rls-no-filter")
    publish(owner, database, "rls")
    assert_sql(
        owner,
        database,
        "SELECT sql FROM st_row_level_security",
        ' sql\n------------------------------------------------\n "SELECT * FROM users WHERE identity = :sender"',
    )
    assert any("Disconnecting all users" in line for line in log_messages(owner, database))


def test_rls_no_disconnect(owner: User) -> None:
    """Publishing the same rules again disconnects nobody."""
    database = published(owner, "rls")
    publish(owner, database, "rls")
    assert not any("Disconnecting all users" in line for line in log_messages(owner, database))
