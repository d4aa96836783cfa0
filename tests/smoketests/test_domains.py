"""Port of upstream's cluster/domains.rs: ``spacetime rename --to``, names with slashes refused, a taken name
refused, and ``PUT /v1/database/:name/names`` replacing every name."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import NOOP

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}


@pytest.fixture
def noop(python_module: Callable[[str], Path]) -> Path:
    return python_module(NOOP)


def identity_of(result_out: str) -> str:
    return result_out.strip().rsplit("identity: ", 1)[1]


def put_names(user: User, database: str, names: list[str]) -> int:
    """``PUT /v1/database/NAME/names`` as ``user`` (the token saved by an earlier command)."""
    token = json.loads(user("login", "show", "--token", "--json").out)["token"]
    request = urllib.request.Request(
        f"{user.url}/v1/database/{database}/names",
        data=json.dumps(names).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request) as response:
        return int(response.status)


def test_set_name(alice: User, db_name: str, noop: Path):
    identity = identity_of(alice.publish(db_name, noop).out)
    renamed = f"{db_name}-renamed"
    assert alice("logs", renamed).code != 0
    result = alice("rename", "--to", renamed, identity)
    assert result.code == 0, result
    assert result.out.strip() == f"Name set to {renamed} for identity {identity}."
    assert alice("logs", renamed).code == 0
    assert alice("logs", db_name).code != 0


def test_subdomain_behavior(alice: User, db_name: str, noop: Path):
    alice.publish(db_name, noop)
    for name in (f"{db_name}//test", f"{db_name}/test/"):
        assert alice("publish", name, "-p", str(noop)).code != 0, name


def test_set_to_existing_name(alice: User, db_name: str, noop: Path):
    identity = identity_of(alice.publish(f"{db_name}-first", noop).out)
    alice.publish(db_name, noop)
    result = alice("rename", "--to", db_name, identity)
    assert result.code != 0, result
    assert "already taken" in result.err


def test_replace_names(alice: User, db_name: str, noop: Path):
    alice.publish(db_name, noop)
    first, second = f"{db_name}-alt1", f"{db_name}-alt2"
    assert put_names(alice, db_name, [first, second]) == 200
    assert alice("logs", first).code == 0
    assert alice("logs", second).code == 0
    assert alice("logs", db_name).code != 0
    assert put_names(alice, first, [db_name]) == 200
