"""Port of upstream's standalone/cli/list.rs: ``spacetime list`` shows every name of each database and its
identity."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import NOOP

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE: dict[str, str] = {}


def test_cli_list_shows_database_names_and_identities(
    alice: User, db_name: str, python_module: Callable[[str], Path]
):
    identity = alice.publish(db_name, python_module(NOOP)).out.strip().rsplit("identity: ", 1)[1]
    alias, second_alias = f"{db_name}-alias", f"{db_name}-alt"
    token = json.loads(alice("login", "show", "--token", "--json").out)["token"]
    request = urllib.request.Request(
        f"{alice.url}/v1/database/{db_name}/names",
        data=json.dumps([alias, second_alias]).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    listed = alice("list")
    assert listed.code == 0, listed
    assert "Database Name(s)" in listed.out and "Identity" in listed.out, listed.out
    assert alias in listed.out and second_alias in listed.out and identity in listed.out, listed.out
