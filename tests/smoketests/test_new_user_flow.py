"""Port of upstream's cluster/new_user_flow.rs: a new identity publishes, calls reducers (a bare word as a
string argument), reads the logs and the rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import PERSON

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}


def test_new_user_flow(alice: User, db_name: str, python_module: Callable[[str], Path]):
    alice.publish(db_name, python_module(PERSON))
    assert alice("call", db_name, "say_hello").code == 0
    assert "Hello, World!" in alice("logs", db_name, "-n", "2").out
    assert alice("call", db_name, "add", "Tyler").code == 0
    assert alice("call", db_name, "say_hello").code == 0
    logs = alice("logs", db_name, "-n", "5").out
    assert logs.count("Hello, World!") == 2, logs
    assert logs.count("Hello, Tyler!") == 1, logs
    rows = alice("sql", db_name, "SELECT * FROM person")
    assert rows.out.rstrip("\n") == ' name\n---------\n "Tyler"', rows.out
