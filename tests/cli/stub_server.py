"""A tiny HTTP server on 127.0.0.1 standing in for a SpacetimeDB server in CLI tests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUBLIC_KEY_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmD6Xg3bS5B9z3o8mJmUuJ4jZLx7n\n"
    "bQeH3cV0e1qvZ0Hq3x0yQmDZQGm1Zl1x3zVnqQ0gZ8sX0w3v9d6mKZ6Q3g==\n"
    "-----END PUBLIC KEY-----\n"
)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"

    @classmethod
    def json(cls, payload: object, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload).encode(), "application/json")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None


@dataclass
class StubServer:
    url: str
    host: str
    routes: dict[tuple[str, str], Reply | Callable[[], Reply]]
    requests: list[Seen] = field(default_factory=list)


def spacetime_routes(identity: str = "c200" + "ab" * 30, token: str = "header.payload.signature"):
    """The endpoints the CLI uses, answering like a healthy server."""
    issued = iter(range(1, 1_000_000))

    def new_identity() -> Reply:
        number = next(issued)
        return Reply.json({"identity": identity, "token": f"{token}.{number}"})

    return {
        ("GET", "/v1/ping"): Reply(200),
        ("GET", "/v1/identity/public-key"): Reply(
            200, PUBLIC_KEY_PEM.encode(), "application/pem-certificate-chain"
        ),
        ("POST", "/v1/identity"): new_identity,
    }


@contextmanager
def running_stub(routes: dict[tuple[str, str], Reply | Callable[[], Reply]]) -> Iterator[StubServer]:
    stub_holder: list[StubServer] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            stub = stub_holder[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            stub.requests.append(Seen(self.command, self.path, self.headers.get("Authorization")))
            route = stub.routes.get((self.command, self.path))
            reply = Reply(404, b"no such route") if route is None else route() if callable(route) else route
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    stub_holder.append(StubServer(url=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}", routes=routes))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub_holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening, so nobody else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
