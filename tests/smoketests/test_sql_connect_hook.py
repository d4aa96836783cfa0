"""Port of upstream's ``crates/smoketests/tests/cluster/sql_connect_hook.rs``: ``/sql`` runs ``client_connected``
and ``client_disconnected`` around the query (upstream PR #4563), and refuses the query when the first raises.
Modules: ``modules/sql_connect_hook.py``, ``modules/client_connection_reject.py``."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.support import assert_sql, log_messages, owner, published, sql

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow


def hooks_logged(owner: User, database: str) -> tuple[bool, bool]:
    logs = log_messages(owner, database)
    return (
        any("sql_connect_hook: client_connected" in line for line in logs),
        any("sql_connect_hook: client_disconnected" in line for line in logs),
    )


def test_sql_rejected_when_client_connected_errors(owner: User) -> None:
    database = published(owner, "client-connection-reject")
    assert sql(owner, database, "SELECT * FROM all_u8s").code != 0


def test_sql_triggers_connect_disconnect_hooks(owner: User) -> None:
    database = published(owner, "sql-connect-hook")
    assert sql(owner, database, "SELECT * FROM person").code == 0
    assert hooks_logged(owner, database) == (True, True)


def test_sql_returns_data_with_connect_hook(owner: User) -> None:
    database = published(owner, "sql-connect-hook")
    assert_sql(owner, database, "SELECT * FROM person", ' name\n---------\n "Alice"')


def test_sql_disconnect_called_on_query_error(owner: User) -> None:
    database = published(owner, "sql-connect-hook")
    assert sql(owner, database, "SELECT * FROM nonexistent_table").code != 0
    assert hooks_logged(owner, database) == (True, True)
