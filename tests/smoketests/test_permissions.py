"""Port of upstream's ``crates/smoketests/tests/cluster/permissions.rs``: what others than a database's owner may
and may not do. Modules: ``modules/modules_basic.py``, ``permissions_private.py``, ``permissions_lifecycle.py``,
``noop.py``."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.runtime_helpers import Smoke, saved_token
from tests.smoketests.support import (
    assert_sql,
    call,
    log_messages,
    module_path,
    owner,
    published,
    sql,
)

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def basic_db(owner: User) -> str:
    return published(owner, "modules-basic")


@pytest.fixture
def stranger(tmp_path: Path, owner: User) -> User:
    """A new identity (upstream's ``new_identity``)."""
    return User(tmp_path / "stranger", owner.url)


def test_call(owner: User) -> None:
    """Anyone may call a reducer: an anonymous call runs it."""
    database = published(owner, "modules-basic")
    call(owner, database, "say_hello", "--anonymous")
    assert sum("World" in line for line in log_messages(owner, database, 10000)) == 1


def test_describe(owner: User, basic_db: str) -> None:
    assert owner("describe", basic_db, "--anonymous").code == 0


def test_logs(owner: User, basic_db: str, stranger: User, tmp_path: Path) -> None:
    call(owner, basic_db, "say_hello")
    call(stranger, basic_db, "say_hello")
    another = User(tmp_path / "another", owner.url)
    assert another("logs", basic_db, "-n", "10000").code != 0


def test_publish(owner: User, basic_db: str, stranger: User) -> None:
    """Another identity can neither replace the module (with or without deleting the data)."""
    module = str(module_path("modules-basic"))
    assert stranger("publish", basic_db, "-p", module, "--delete-data", "--yes").code != 0
    assert stranger("publish", basic_db, "-p", module, "--yes").code != 0


def test_replace_names(owner: User, basic_db: str, stranger: User) -> None:
    """``PUT /v1/database/NAME/names`` by another identity is refused."""
    call(stranger, basic_db, "say_hello")  # obtains and saves the stranger's identity
    request = urllib.request.Request(
        f"{owner.url}/v1/database/{basic_db}/names",
        data=b'["post", "gres"]',
        headers={"Authorization": f"Bearer {saved_token(stranger)}", "Content-Type": "application/json"},
        method="PUT",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status != 200


def test_private_table(owner: User, stranger: User) -> None:
    """Only the owner reads a private table, by SQL or subscription; ``SELECT * FROM *`` gives others the public
    tables only."""
    database = published(owner, "permissions-private")
    assert_sql(owner, database, "SELECT * FROM secret", " answer\n--------\n 42")
    assert sql(stranger, database, "SELECT * FROM secret").code != 0
    assert Smoke(stranger, database).subscribe_once("SELECT * FROM secret").code != 0

    public = Smoke(stranger, database).subscribe("SELECT * FROM common_knowledge", n=1)
    call(stranger, database, "do_thing", "godmorgon")
    assert public.collect() == [{"common_knowledge": {"deletes": [], "inserts": [{"thing": "godmorgon"}]}}]

    everything = Smoke(stranger, database).subscribe("SELECT * FROM *", n=1)
    call(stranger, database, "do_thing", "howdy")
    assert everything.collect() == [{"common_knowledge": {"deletes": [], "inserts": [{"thing": "howdy"}]}}]


def test_cannot_delete_others_database(owner: User, stranger: User) -> None:
    database = published(owner, "noop")
    assert stranger("delete", database, "--yes").code != 0


def test_lifecycle_reducers_cant_be_called(owner: User) -> None:
    database = published(owner, "permissions-lifecycle")
    for kind in ("init", "client_connected", "client_disconnected"):
        assert owner("call", database, f"lifecycle_{kind}").code != 0, kind
