"""Port of upstream's cluster/cli/server.rs: ``spacetime server ping URL``."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE: dict[str, str] = {}


def test_cli_can_ping_spacetimedb_server(alice: User):
    result = alice("server", "ping", alice.url, server=False)
    assert result.code == 0, result
