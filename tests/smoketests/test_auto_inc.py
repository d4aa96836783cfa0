"""Port of upstream's ``crates/smoketests/tests/cluster/auto_inc.rs``: AutoInc columns of every integer type, alone
and unique. Modules: ``modules/autoinc_basic.py``, ``modules/autoinc_unique.py``.

The calls and log reads go straight to the HTTP API (what ``spacetime call`` and ``spacetime logs`` send):
there are 50 of them per test."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.support import http_call, http_log_messages, owner, published

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow

INT_TYPES = ["u_8", "u_16", "u_32", "u_64", "u_128", "i_8", "i_16", "i_32", "i_64", "i_128"]


def test_autoinc_basic(owner: User) -> None:
    database = published(owner, "autoinc-basic")
    for name in INT_TYPES:
        for person, expected in (("Robert", 1), ("Julie", 2), ("Samantha", 3)):
            assert http_call(owner, database, f"add_{name}", person, expected) == 200
        assert http_call(owner, database, f"say_hello_{name}") == 200
        logs = http_log_messages(owner, database, 4)
        for line in ("Hello, 3:Samantha!", "Hello, 2:Julie!", "Hello, 1:Robert!", "Hello, World!"):
            assert any(line in message for message in logs), (name, logs)


def test_autoinc_unique(owner: User) -> None:
    """The sequence hands out 1, then 2, which a row inserted with an explicit 2 already holds: a unique
    violation."""
    database = published(owner, "autoinc-unique")
    for name in INT_TYPES:
        assert http_call(owner, database, f"update_{name}", "Robert", 2) == 200
        assert http_call(owner, database, f"add_new_{name}", "Success") == 200
        assert http_call(owner, database, f"add_new_{name}", "Failure") != 200, name
        assert http_call(owner, database, f"say_hello_{name}") == 200
        logs = http_log_messages(owner, database, 4)
        for line in ("Hello, 2:Robert!", "Hello, 1:Success!", "Hello, World!"):
            assert any(line in message for message in logs), (name, logs)
