"""Port of upstream's cluster/client_connection_errors.rs: a ``client_connected`` reducer that fails refuses the
connection (``spacetime subscribe`` exits non-zero, ``client_disconnected`` never runs), and a failing
``client_disconnected`` still removes the client's ``st_client`` row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import Result, User
from tests.smoketests.modules import ALL_U8S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}


def subscribe_once(
    alice: User, db_name: str, python_module: Callable[[str], Path], *, connected: str, disconnected: str
) -> tuple[Result, str]:
    """Publish ALL_U8S with these lifecycle bodies, subscribe until the initial rows, and return the result and
    the module's log."""
    alice.publish(db_name, python_module(ALL_U8S.format(connected=connected, disconnected=disconnected)))
    result = alice("subscribe", db_name, "SELECT * FROM all_u8s", "-n", "0", "-t", "30")
    return result, alice("logs", db_name, "-n", "100").out


def test_client_connected_error_rejects_connection(
    alice: User, db_name: str, python_module: Callable[[str], Path]
):
    result, logs = subscribe_once(
        alice,
        db_name,
        python_module,
        connected='raise RuntimeError("Rejecting connection from client")',
        disconnected="This should never be called, since we reject all connections!",
    )
    assert result.code != 0, result
    assert "Rejecting connection from client" in logs
    assert "This should never be called" not in logs


def test_client_disconnected_error_still_deletes_st_client(
    alice: User, db_name: str, python_module: Callable[[str], Path]
):
    result, logs = subscribe_once(
        alice,
        db_name,
        python_module,
        connected="pass",
        disconnected="This should be called, but the `st_client` row should still be deleted",
    )
    assert result.code == 0, result
    assert "This should be called, but the `st_client` row should still be deleted" in logs
    clients = alice("sql", db_name, "SELECT * FROM st_client")
    assert clients.code == 0, clients
    # at most the SQL query's own connection
    assert sum("0x" in line for line in clients.out.splitlines()) <= 1, clients.out
