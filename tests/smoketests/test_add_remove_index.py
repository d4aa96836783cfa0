"""Port of upstream's ``crates/smoketests/tests/cluster/add_remove_index.rs``: a join subscription needs indexes on
its join columns, and adding or removing them is an automatic migration. Modules:
``modules/add_remove_index*.py``."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.runtime_helpers import Smoke
from tests.smoketests.support import fresh_name, owner, publish

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow

JOIN_QUERY = "select t_1.* from t_1 join t_2 on t_1.id = t_2.id where t_2.id = 1001"


def assert_join_refused(owner: User, database: str) -> None:
    refused = Smoke(owner, database).subscribe_once(JOIN_QUERY)
    assert refused.code != 0, refused


def test_add_then_remove_index(owner: User) -> None:
    """Without indexes the join subscription is refused; with them it gets the new row; without them again it is
    refused again."""
    database = fresh_name()
    publish(owner, database, "add-remove-index")
    assert_join_refused(owner, database)

    publish(owner, database, "add-remove-index-indexed")
    subscription = Smoke(owner, database).subscribe(JOIN_QUERY, n=1)
    assert owner("call", database, "add", "--anonymous").code == 0
    assert len(subscription.collect()) == 1

    publish(owner, database, "add-remove-index")
    assert_join_refused(owner, database)
