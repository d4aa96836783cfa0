"""Upstream's crates/smoketests/tests/cluster/timestamp_route.rs, ported: ``GET /v1/database/NAME/unstable/timestamp``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TIMESTAMP_TAG = "__timestamp_micros_since_unix_epoch__"


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def new_identity_token(server_url: str) -> str:
    """A fresh server-issued identity (upstream's ``new_identity()`` before publishing)."""
    request = urllib.request.Request(f"{server_url}/v1/identity", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["token"])


def test_timestamp_route(shared_server: ServerProcess, alice: User, db_name: str) -> None:
    """Upstream test_timestamp_route: 404 for a database that does not exist; for one that does, the database's
    current time as a SATS-JSON Timestamp, an object whose one field holds integer microseconds."""
    token = new_identity_token(shared_server.url)
    route = f"{shared_server.url}/v1/database/{db_name}/unstable/timestamp"
    status, _ = get(route, token)
    assert status == 404, status
    alice.publish(db_name)
    status, body = get(route, token)
    assert 200 <= status < 300, (status, body)
    timestamp = json.loads(body)
    assert isinstance(timestamp, dict), timestamp
    assert isinstance(timestamp.get(TIMESTAMP_TAG), int) and not isinstance(timestamp[TIMESTAMP_TAG], bool), (
        timestamp
    )
