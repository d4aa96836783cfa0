"""Port of upstream's cluster/connect_disconnect_from_cli.rs: ``spacetime call`` runs the module's
``client_connected`` and ``client_disconnected`` reducers around the call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}

CONNECT_DISCONNECT = """
    from spacetimedb import ReducerContext, log, reducer


    @reducer(lifecycle="client_connected")
    def connected(ctx: ReducerContext) -> None:
        log.info("_connect called")


    @reducer(lifecycle="client_disconnected")
    def disconnected(ctx: ReducerContext) -> None:
        log.info("disconnect called")


    @reducer
    def say_hello(ctx: ReducerContext) -> None:
        log.info("Hello, World!")
"""


def test_conn_disconn(alice: User, db_name: str, python_module: Callable[[str], Path]):
    alice.publish(db_name, python_module(CONNECT_DISCONNECT))
    assert alice("call", db_name, "say_hello").code == 0
    logs = alice("logs", db_name, "-n", "10").out
    assert "_connect called" in logs and "disconnect called" in logs and "Hello, World!" in logs, logs
