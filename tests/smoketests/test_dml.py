"""Port of upstream's ``crates/smoketests/tests/cluster/dml.rs``: rows inserted with SQL DML reach subscribers.
Module: ``modules/dml.py``."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import alice, shared_server
from tests.smoketests.runtime_helpers import Smoke
from tests.smoketests.support import published, sql

__all__ = ["alice", "shared_server"]

pytestmark = pytest.mark.slow


def test_subscribe(alice: User) -> None:
    database = published(alice, "dml")
    subscription = Smoke(alice, database).subscribe("SELECT * FROM t", n=2)
    for name in ("Alice", "Bob"):
        assert sql(alice, database, f"INSERT INTO t (name) VALUES ('{name}')").code == 0
    assert subscription.collect() == [
        {"t": {"deletes": [], "inserts": [{"name": "Alice"}]}},
        {"t": {"deletes": [], "inserts": [{"name": "Bob"}]}},
    ]
