"""Port of upstream's cluster/database_lock.rs: ``spacetime lock`` protects a database against deletion and
``publish --delete-data``; updates still work; only the owner may lock or unlock, and both are idempotent."""

from __future__ import annotations

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


@pytest.fixture
def identity(alice: User, db_name: str, noop: Path) -> str:
    """A database alice published (by name), known by its identity, as upstream's tests address it."""
    return alice.publish(db_name, noop).out.strip().rsplit("identity: ", 1)[1]


def test_locked_database_cannot_be_deleted(alice: User, identity: str):
    assert alice("lock", identity).code == 0
    refused = alice("delete", identity, "--yes")
    assert refused.code != 0, refused
    assert "Database is locked and cannot be deleted" in refused.err
    assert alice("logs", identity).code == 0  # still there


def test_locked_database_cannot_be_reset(alice: User, db_name: str, noop: Path, identity: str):
    assert alice("lock", identity).code == 0
    refused = alice("publish", db_name, "-p", str(noop), "--delete-data", "--yes")
    assert refused.code != 0, refused
    assert "Database is locked and cannot be reset with --delete-data" in refused.err


def test_unlock_allows_delete(alice: User, identity: str):
    locked = alice("lock", identity)
    assert locked.out.strip() == f"Database {identity} is now locked. It cannot be deleted until unlocked."
    assert alice("delete", identity, "--yes").code != 0
    unlocked = alice("unlock", identity)
    assert unlocked.code == 0 and unlocked.out.strip() == f"Database {identity} is now unlocked."
    assert alice("delete", identity, "--yes").code == 0


def test_lock_is_idempotent(alice: User, identity: str):
    assert alice("lock", identity).code == 0
    assert alice("lock", identity).code == 0


def test_unlock_is_idempotent(alice: User, identity: str):
    assert alice("unlock", identity).code == 0


def test_non_owner_cannot_lock_or_unlock(alice: User, bob: User, identity: str):
    assert bob("lock", identity).code != 0
    assert alice("lock", identity).code == 0
    assert bob("unlock", identity).code != 0
    assert alice("delete", identity, "--yes").code != 0  # bob's unlock changed nothing


def test_locked_database_allows_publish(alice: User, db_name: str, noop: Path, identity: str):
    assert alice("lock", identity).code == 0
    republished = alice("publish", db_name, "-p", str(noop))
    assert republished.code == 0, republished
