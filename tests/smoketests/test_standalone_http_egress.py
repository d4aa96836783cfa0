"""Upstream's standalone/http_egress.rs: a redirect does not get a procedure's request to a private address; the
module http-egress rewritten in Python. Upstream builds its server with loopback allowed for tests; ours lists
`localhost` with --procedure-http-allow (and `*` for every other host), which lets procedures reach the local
redirect server by name and nothing private else."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess
from tests.smoketests.egress_module import HTTP_EGRESS
from tests.smoketests.runtime_helpers import publish, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ACCEPT_TIMEOUT_SECONDS = 10


@pytest.fixture
def egress_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "data", "--procedure-http-allow", "localhost,*") as server:
        yield server


class RedirectServer:
    """Answers one request with `302 Found` to ``location`` (upstream's spawn_redirect_server)."""

    def __init__(self, location: str) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(ACCEPT_TIMEOUT_SECONDS)
        self.port = self.listener.getsockname()[1]
        self.location = location
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        try:
            connection, _ = self.listener.accept()
            with connection:
                connection.settimeout(ACCEPT_TIMEOUT_SECONDS)
                connection.recv(65536)
                connection.sendall(
                    f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
        except BaseException as error:  # reported by join()
            self.error = error

    def join(self) -> None:
        self.thread.join(ACCEPT_TIMEOUT_SECONDS + 5)
        self.listener.close()
        assert self.error is None, f"the redirect server got no request: {self.error}"


def test_http_redirect_to_disallowed_ip_is_blocked(
    egress_server: ServerProcess, tmp_path: Path, db_name: str, python_module: Callable[[str], Path]
) -> None:
    """Upstream test_http_redirect_to_disallowed_ip_is_blocked: the procedure's request reaches the redirect
    server, and following its redirect to http://10.0.0.1:80/ is refused as a private address."""
    redirect = RedirectServer("http://10.0.0.1:80/")
    smoke = publish(User(tmp_path / "owner", egress_server.url), db_name, python_module(HTTP_EGRESS))
    smoke.call("request_disallowed_ip", f"http://localhost:{redirect.port}/")
    redirect.join()
