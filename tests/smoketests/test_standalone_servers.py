"""Port of upstream's standalone/servers.rs: ``server add NAME --url URL`` prints the host and protocol,
``server list`` shows ``HOST PROTOCOL NICKNAME`` lines, ``server fingerprint``, and ``server edit``."""

from __future__ import annotations

import re

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE: dict[str, str] = {}


def test_servers(alice: User):
    added = alice(
        "server",
        "add",
        "--url",
        "https://testnet.spacetimedb.com",
        "testnet",
        "--no-fingerprint",
        server=False,
    )
    assert added.code == 0, added
    assert re.search(r"Host: testnet\.spacetimedb\.com\n", added.out), added.out
    assert re.search(r"Protocol: https\n", added.out), added.out
    servers = alice("server", "list", server=False).out
    assert re.search(r"(?m)^\s*testnet\.spacetimedb\.com\s+https\s+testnet\s*$", servers), servers
    local = alice("server", "add", "--url", alice.url, "test-local", "--no-fingerprint", server=False)
    assert local.code == 0, local
    fingerprint = alice("server", "fingerprint", "test-local", "-y", server=False)
    assert fingerprint.code == 0, fingerprint
    assert "fingerprint" in fingerprint.out or "Fingerprint" in fingerprint.out, fingerprint.out


def test_edit_server(alice: User):
    assert (
        alice("server", "add", "--url", "https://foo.com", "foo", "--no-fingerprint", server=False).code == 0
    )
    edited = alice(
        "server",
        "edit",
        "foo",
        "--url",
        "https://edited-testnet.spacetimedb.com",
        "--new-name",
        "edited-testnet",
        "--no-fingerprint",
        "--yes",
        server=False,
    )
    assert edited.code == 0, edited
    servers = alice("server", "list", server=False).out
    assert re.search(r"(?m)^\s*edited-testnet\.spacetimedb\.com\s+https\s+edited-testnet\s*$", servers), (
        servers
    )
