"""Port of upstream's ``crates/smoketests/tests/standalone/auto_migration.rs``: a migration that drops an event
table replays from the commit log after a restart. Modules: ``modules/auto_migration_drop_event_table_*.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess, start_server
from tests.smoketests.support import call, publish, published, sql_output

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[list[ServerProcess]]:
    """The server of this test, as a list whose last element is the running one (the test restarts it)."""
    running = [start_server(data_dir)]
    try:
        yield running
    finally:
        running[-1].shut_down()


def automigrate_drop_event_table_replays_after_restart(
    server: list[ServerProcess], data_dir: Path, tmp_path: Path
) -> None:
    owner = User(tmp_path / "owner", server[-1].url)
    database = published(owner, "auto-migration-drop-event-table-before")
    call(owner, database, "add_person", "Robert")
    call(owner, database, "emit_event")
    publish(owner, database, "auto-migration-drop-event-table-after")

    # data written after the drop is durable once confirmed, so the drop is too
    call(owner, database, "add_person", "Julie")
    confirmed = owner("sql", database, "SELECT * FROM person WHERE name = 'Julie'", "--confirmed")
    assert confirmed.code == 0 and "Julie" in confirmed.out, confirmed

    port = server[-1].port
    server[-1].shut_down()
    server.append(
        start_server(data_dir, extra_args=["--listen-addr", f"127.0.0.1:{port}"])
    )  # replays the log

    names = sql_output(owner, database, "SELECT name FROM person")
    assert "Robert" in names and "Julie" in names, names
    call(owner, database, "add_person", "Samantha")
    assert "Samantha" in sql_output(owner, database, "SELECT name FROM person WHERE name = 'Samantha'")


test_automigrate_drop_event_table_replays_after_restart = automigrate_drop_event_table_replays_after_restart
