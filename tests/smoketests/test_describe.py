"""Port of upstream's cluster/describe.rs: ``spacetime describe --json`` of a database, of one reducer and of one
table, by the database's identity."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import PERSON

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}


def test_describe(alice: User, db_name: str, python_module: Callable[[str], Path]):
    identity = alice.publish(db_name, python_module(PERSON)).out.strip().rsplit("identity: ", 1)[1]
    whole = alice("describe", "--json", identity)
    assert whole.code == 0, whole
    assert json.loads(whole.out)
    reducer = alice("describe", "--json", identity, "reducer", "say_hello")
    assert reducer.code == 0, reducer
    assert json.loads(reducer.out)
    table = alice("describe", "--json", identity, "table", "person")
    assert table.code == 0, table
    assert json.loads(table.out)
