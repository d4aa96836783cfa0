"""Connections have bounds (issue 14), black-box against a real server process.

A connection must send a complete request head in time and is closed when idle between requests; connections
per client address and server-wide are limited, and past either a new one is answered with a 503 naming the
reason; the server-wide limit stays below the open-file limit, which the server raises to its hard limit.

Where the client's address matters the sockets connect from other loopback addresses (127.0.0.2, ...): all of
127/8 reaches the server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.client
import resource
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from spacetimedb.protocol import v2
from spacetimedb.server.connections import ConnectionSettings, OpenFiles, address_of

from ..conftest import ServerProcess, start_server
from .test_e2e import publish
from .wsclient import ENCODE_STR, RawClient

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


PING = b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
TOO_MANY_FROM_ADDRESS = "too many connections from your address"
AT_CONNECTION_LIMIT = "the server is at its connection limit"
SLACK = 20.0  # beyond a timeout, how long a test waits for the server to act on it


@pytest.fixture
def run_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Starts servers with the given command-line options; stops them after the test."""
    started: list[ServerProcess] = []

    def run(*args: str, open_files: tuple[int, int] | None = None) -> ServerProcess:
        server = start_server(tmp_path / f"data{len(started)}", extra_args=list(args), open_files=open_files)
        started.append(server)
        return server

    yield run
    for server in started:
        server.shut_down()


def connect(server: ServerProcess, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))


def ping(server: ServerProcess, source: str = "127.0.0.1") -> tuple[int, str]:
    """``GET /v1/ping`` on a fresh connection: the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", "/v1/ping")
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def ping_on(sock: socket.socket) -> bytes:
    """``GET /v1/ping`` on an open (keep-alive) connection: the response's status line."""
    sock.sendall(PING)
    received = b""
    while b"\r\n\r\n" not in received:  # the answer has no body
        chunk = sock.recv(4096)
        assert chunk, f"the server closed the connection after {received!r}"
        received += chunk
    return received.split(b"\r\n", 1)[0]


def refusal(server: ServerProcess, source: str = "127.0.0.1") -> str:
    """What a new connection that asks nothing is told before the server closes it (a refused one is answered
    at once; asking nothing means no unread request can turn the close into a reset)."""
    with connect(server, source) as sock:
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    return received.decode()


def admitted_connections(server: ServerProcess, sources: list[str], count: int) -> list[socket.socket]:
    """``count`` connections from each source address, each shown admitted by a ping answered on it."""
    sockets = []
    for source in sources:
        for _ in range(count):
            sock = connect(server, source)
            sockets.append(sock)
            assert ping_on(sock) == b"HTTP/1.1 200 OK"
    return sockets


@dataclass
class Ending:
    received: bytes
    reset: bool


def wait_until_closed(
    sockets: list[socket.socket], deadline: float, each_round: Callable[[], None] = lambda: None
) -> dict[socket.socket, Ending]:
    """Reads the sockets until the server has closed each one or the deadline passes; calls ``each_round``
    between reads. Returns how each closed socket ended."""
    received = dict.fromkeys(sockets, b"")
    ended: dict[socket.socket, Ending] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(ended) < len(sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    ended[sock] = Ending(received[sock], reset=True)
                    selector.unregister(sock)
                    continue
                if data:
                    received[sock] += data
                else:
                    ended[sock] = Ending(received[sock], reset=False)
                    selector.unregister(sock)
            each_round()
    return ended


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def wait_for_ping(server: ServerProcess, source: str = "127.0.0.1") -> tuple[int, str]:
    """Pings until answered 200 (the server notices closed connections asynchronously), at most 10 s."""
    deadline = time.monotonic() + 10
    answer = ping(server, source)
    while answer[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = ping(server, source)
    return answer


def test_silent_and_dripping_connections_are_closed_after_the_head_timeout(run_server):
    server = run_server(
        "--request-head-timeout", "2", "--keepalive-timeout", "60", "--max-connections-per-address", "1000"
    )
    silent = [connect(server) for _ in range(200)]
    dripping = [connect(server) for _ in range(100)]
    # a request head that never ends, dripped one byte at a time
    head = b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
    sent = 0
    next_drip = time.monotonic()
    answers: list[tuple[int, str]] = []

    def drip_and_ping() -> None:
        nonlocal sent, next_drip
        if time.monotonic() < next_drip:
            return
        next_drip = time.monotonic() + 0.5
        for sock in dripping:
            if sock.fileno() != -1:
                try:
                    sock.send(head[sent : sent + 1])
                except OSError:  # closed by the server; the reader notices
                    pass
        sent += 1
        answers.append(ping(server))

    try:
        ended = wait_until_closed(silent + dripping, time.monotonic() + 2 + SLACK, drip_and_ping)
        assert len(ended) == 300, f"{300 - len(ended)} connections still open"
        for sock in silent:
            assert ended[sock].received.startswith(b"HTTP/1.1 408 Request Timeout"), ended[sock]
            assert b"no complete request within 2s" in ended[sock].received
        assert answers and all(answer == (200, "") for answer in answers), answers
        assert ping(server) == (200, "")
    finally:
        close_all(silent + dripping)


def test_idle_keepalive_connections_are_closed(run_server):
    server = run_server("--keepalive-timeout", "1", "--request-head-timeout", "30")
    sockets = [connect(server) for _ in range(20)]
    try:
        for sock in sockets:  # two requests on each: the connection is kept alive between them
            assert ping_on(sock) == b"HTTP/1.1 200 OK"
            assert ping_on(sock) == b"HTTP/1.1 200 OK"
        ended = wait_until_closed(sockets, time.monotonic() + 1 + SLACK)
        assert len(ended) == 20 and all(ending == Ending(b"", reset=False) for ending in ended.values())
    finally:
        close_all(sockets)


def test_an_established_websocket_outlives_both_timeouts(run_server):
    server = run_server("--keepalive-timeout", "1", "--request-head-timeout", "1")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http_session:
            await publish(http_session, server.url)
            client, _ = await RawClient.connect(http_session, server.url, "chat")
            await asyncio.sleep(3)  # past both timeouts
            await client.call("send_message", ENCODE_STR("still here"))
            result = await client.next_of(v2.REDUCER_RESULT)
            assert result.value[2].tag == v2.OUTCOME_OK, result
            await client.ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_past_the_per_address_limit_new_connections_get_a_503(run_server):
    server = run_server("--max-connections-per-address", "50")
    held = admitted_connections(server, ["127.0.0.2"], 50)
    try:
        answer = refusal(server, "127.0.0.2")
        assert answer.startswith("HTTP/1.1 503 Service Unavailable") and TOO_MANY_FROM_ADDRESS in answer
        assert ping(server, "127.0.0.2") == (503, TOO_MANY_FROM_ADDRESS + "\n")

        async def websocket_attempt() -> int:
            connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=connector) as http_session:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http_session.ws_connect(
                        server.url.replace("http", "ws") + "/v1/database/x/subscribe"
                    )
                return refused.value.status

        assert asyncio.run(asyncio.wait_for(websocket_attempt(), 30)) == 503
        assert ping(server, "127.0.0.3") == (200, "")  # other addresses are served
        held.pop().close()
        assert wait_for_ping(server, "127.0.0.2") == (200, "")
    finally:
        close_all(held)


def test_past_the_server_wide_limit_new_connections_get_a_503(run_server):
    server = run_server("--max-connections", "40", "--max-connections-per-address", "10")
    held = admitted_connections(server, ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"], 10)
    try:
        for source in ("127.0.0.1", "127.0.0.6"):
            answer = refusal(server, source)
            assert answer.startswith("HTTP/1.1 503 Service Unavailable") and AT_CONNECTION_LIMIT in answer
        held.pop().close()
        assert wait_for_ping(server) == (200, "")
    finally:
        close_all(held)


def test_a_flood_past_the_open_file_limit_is_refused_cleanly(run_server):
    """At nofile=256 with the default limits: more idle sockets than the server may open files, from one address
    and then from many, are refused with 503s while others are served; nothing is reset, and the admitted ones
    are closed by the head timeout."""
    server = run_server("--request-head-timeout", "15", open_files=(256, 256))
    one_address = [connect(server, "127.0.0.2") for _ in range(300)]
    flood = list(one_address)
    try:
        assert ping(server) == (200, "")  # another address is served despite the flood
        flood += [connect(server, f"127.0.0.{3 + i % 10}") for i in range(300)]
        answer = refusal(server)  # now the server as a whole is full: a clear refusal, not a reset or a hang
        assert answer.startswith("HTTP/1.1 503 Service Unavailable") and AT_CONNECTION_LIMIT in answer
        ended = wait_until_closed(flood, time.monotonic() + 15 + SLACK)
        assert len(ended) == len(flood), f"{len(flood) - len(ended)} connections still open"
        assert not [ending for ending in ended.values() if ending.reset]
        refused = [sock for sock in flood if ended[sock].received.startswith(b"HTTP/1.1 503 ")]
        timed_out = [sock for sock in flood if ended[sock].received.startswith(b"HTTP/1.1 408 ")]
        assert len(refused) + len(timed_out) == len(flood)
        assert 0 < len(timed_out) < 256
        assert all(
            TOO_MANY_FROM_ADDRESS.encode() in ended[sock].received for sock in refused if sock in one_address
        )
        assert server.process.poll() is None
        assert ping(server) == (200, "")
    finally:
        close_all(flood)


def test_the_soft_open_file_limit_is_raised_to_the_hard_one(run_server):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard open-file limit ({hard}) leaves no room below it")
    server = run_server(open_files=(512, hard))
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft_now, hard_now = line.split()[3:5]
    assert soft_now == hard_now == ("unlimited" if hard == resource.RLIM_INFINITY else str(hard))
    assert server.process.stdout is not None
    announced = [server.process.stdout.readline() for _ in range(2)]  # `data in ...`, then the limits
    assert "(raised from 512)" in announced[1], announced


def test_the_default_limits_leave_room_within_the_open_file_limit():
    assert ConnectionSettings().resolve(OpenFiles(1024)).max_connections == 736
    assert ConnectionSettings().resolve(OpenFiles(1024)).max_per_address == 184
    assert ConnectionSettings().resolve(OpenFiles(None)).max_connections == 10_000
    lowered = ConnectionSettings(max_connections=5000).resolve(OpenFiles(1024))
    assert lowered.max_connections == 736 and "lowered from 5000" in lowered.summary


def test_connections_are_counted_per_ipv4_address_and_per_ipv6_network():
    assert address_of(("192.0.2.7", 1)) == address_of(("::ffff:192.0.2.7", 1, 0, 0)) == "192.0.2.7"
    assert address_of(("2001:db8::1", 1, 0, 0)) == address_of(("2001:db8::ff", 2, 0, 0)) == "2001:db8::/64"
