"""Upstream's cluster/fail_initial_publish.rs: a module the server refuses on first publish leaves no database
behind, and a refused update leaves the previous module in place; the modules fail-initial-publish-broken and
-fixed rewritten in Python (a row-level security rule that names a table that does not exist)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import put_program

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FIXED_QUERY = '"sql": "SELECT * FROM person WHERE name = \'me\'"'

MODULE = """
    from spacetimedb import client_visibility_filter, table


    @table(name="person", public=True)
    class Person:
        name: str


    HIDE_PEOPLE_EXCEPT_ME = client_visibility_filter("SELECT * FROM {table} WHERE name = 'me'")
"""
# The bug upstream's broken module has: `Person` is the class, the table is `person`.
BROKEN = MODULE.format(table="Person")
FIXED = MODULE.format(table="person")


def test_fail_initial_publish(alice: User, db_name: str, python_module: Callable[[str], Path]) -> None:
    """Upstream test_fail_initial_publish: the refused first publish leaves "No such database"; the fixed module
    publishes under the same name; a refused update keeps the fixed module (`describe --json` shows its rule)."""
    broken, fixed = python_module(BROKEN), python_module(FIXED)
    assert alice("publish", db_name, "-p", str(broken)).code != 0  # our CLI refuses it before uploading
    status, answer = put_program(alice, db_name, broken.read_bytes())  # and so does the server
    assert status == 400 and "unknown table `Person`" in answer, (status, answer)
    missing = alice("describe", "--json", db_name)
    assert missing.code != 0
    assert "No such database" in missing.err, missing.err

    alice.publish(db_name, fixed)
    described = alice("describe", "--json", db_name)
    assert described.code == 0 and FIXED_QUERY in described.out, described

    assert alice("publish", db_name, "-p", str(broken), "-y").code != 0
    status, answer = put_program(alice, db_name, broken.read_bytes())
    assert status == 400 and "unknown table `Person`" in answer, (status, answer)
    described = alice("describe", "--json", db_name)
    assert described.code == 0 and FIXED_QUERY in described.out, described
