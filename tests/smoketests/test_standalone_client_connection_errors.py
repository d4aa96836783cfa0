"""Port of upstream's standalone/client_connection_errors.rs: a client that drops its HTTP reducer call while the
reducer runs still has its ``st_client`` (and ``st_connection_credentials``) row removed once the call ends."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}

# upstream's "client-connection-http-cancel": a reducer that takes a while, logging when it starts and ends
HTTP_CANCEL = """
    import time

    from spacetimedb import ReducerContext, log, reducer


    @reducer
    def slow(ctx: ReducerContext) -> None:
        log.info("http_cancel_repro: slow reducer started")
        time.sleep(1.0)
        log.info("http_cancel_repro: slow reducer finished")
"""

WAIT_SECONDS = 30.0


def wait_for_log(user: User, database: str, needle: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while needle not in user("logs", database, "-n", "200").out:
        assert time.monotonic() < deadline, f"no log line with {needle!r}"
        time.sleep(0.05)


def count_rows(user: User, database: str, table: str) -> int:
    result = user("sql", database, f"SELECT COUNT(*) AS count FROM {table}", "--json")
    assert result.code == 0, result
    return int(json.loads(result.out)[0]["rows"][0][0])


def call_and_hold(user: User, database: str, reducer: str) -> socket.socket:
    """Send ``POST /call/REDUCER`` on a raw keep-alive connection and leave it open, unread."""
    token = json.loads(user("login", "show", "--token", "--json").out)["token"]
    url = urlsplit(user.url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall(
        (
            f"POST /v1/database/{database}/call/{reducer} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Connection: keep-alive\r\n\r\n[]"
        ).encode()
    )
    return sock


def abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a client that went away does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_http_reducer_call_cancel_still_deletes_st_client(
    alice: User, db_name: str, python_module: Callable[[str], Path]
):
    alice.publish(db_name, python_module(HTTP_CANCEL))
    sock = call_and_hold(alice, db_name, "slow")
    wait_for_log(alice, db_name, "http_cancel_repro: slow reducer started")
    abort(sock)
    wait_for_log(alice, db_name, "http_cancel_repro: slow reducer finished")
    deadline = time.monotonic() + 5
    counts = (
        count_rows(alice, db_name, "st_client"),
        count_rows(alice, db_name, "st_connection_credentials"),
    )
    while max(counts) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
        counts = (
            count_rows(alice, db_name, "st_client"),
            count_rows(alice, db_name, "st_connection_credentials"),
        )
    # at most the SQL query's own connection
    assert counts[0] <= 1 and counts[1] <= 1, counts
