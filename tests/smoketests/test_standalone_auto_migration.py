"""Port of upstream's ``crates/smoketests/tests/standalone/auto_migration.rs``: a migration that drops an event
table replays from the commit log after a restart. Modules: ``modules/auto_migration_drop_event_table_*.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import RestartableServer
from tests.smoketests.support import call, publish, published, sql_output

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RestartableServer]:
    with RestartableServer(tmp_path / "data") as server:
        yield server


def test_automigrate_drop_event_table_replays_after_restart(
    server: RestartableServer, tmp_path: Path
) -> None:
    owner = User(tmp_path / "owner", server.url)
    database = published(owner, "auto-migration-drop-event-table-before")
    call(owner, database, "add_person", "Robert")
    call(owner, database, "emit_event")
    publish(owner, database, "auto-migration-drop-event-table-after")

    # data written after the drop is durable once confirmed, so the drop is too
    call(owner, database, "add_person", "Julie")
    confirmed = owner("sql", database, "SELECT * FROM person WHERE name = 'Julie'", "--confirmed")
    assert confirmed.code == 0 and "Julie" in confirmed.out, confirmed

    server.restart()  # on the same port: the commit log is replayed

    names = sql_output(owner, database, "SELECT name FROM person")
    assert "Robert" in names and "Julie" in names, names
    call(owner, database, "add_person", "Samantha")
    assert "Samantha" in sql_output(owner, database, "SELECT name FROM person WHERE name = 'Samantha'")
