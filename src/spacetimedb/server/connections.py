"""Bounds on client connections: how many, from whom, and how long one may sit without sending a request.

The listening socket's protocol factory is a ``ConnectionGate``. Each accepted connection is counted against a
server-wide limit and a limit per client address; past either it is answered at once with a 503 naming the
reason and closed, without reaching aiohttp. An admitted connection must send a complete request head within the
head timeout (or it gets a 408 and is closed); between requests aiohttp closes it after the keep-alive timeout,
which also bounds a head dripped after the first request. The server-wide limit stays below the open-file limit
(raised to its hard limit at start), so the server refuses connections before it runs out of descriptors.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

DEFAULT_REQUEST_HEAD_TIMEOUT = 20.0
DEFAULT_KEEPALIVE_TIMEOUT = 75.0
# Files the server needs besides its clients: stdio, the listening socket, the control database, the keys, and
# for each running database its worker's channel, stderr pipe and deadline page. A quarter of the open-file
# limit, and never fewer than this.
RESERVED_FILES_MIN = 96
# A refused connection stays open this long (reading and dropping what the client sends) so that the client
# reads the refusal; closing with its request unread would reset the connection and could lose the answer.
REFUSAL_LINGER_SECONDS = 2.0
# Refusals lingering at once; beyond them a refusal is written and closed at once, so a flood of refused
# connections costs a bounded number of descriptors.
MAX_LINGERING_REFUSALS = 32
# Default ceilings when the open-file limit is generous: one event loop serves every connection, and one address
# rarely needs more (behind a reverse proxy every client has the proxy's address: raise it there).
DEFAULT_MAX_CONNECTIONS_CEILING = 10_000
DEFAULT_PER_ADDRESS_CEILING = 256

TOO_MANY_FROM_ADDRESS = "too many connections from your address"
AT_CONNECTION_LIMIT = "the server is at its connection limit"
REFUSAL_CAUSES = {
    TOO_MANY_FROM_ADDRESS: "per_address_limit",
    AT_CONNECTION_LIMIT: "connection_limit",
}
HEAD_TIMEOUT_CAUSE = "request_head_timeout"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class OpenFiles:
    """The process's open-file limit after start-up raised it (``None``: no limit or no way to tell)."""

    limit: int | None
    raised_from: int | None = None


def raise_open_file_limit() -> OpenFiles:
    """Raise the soft RLIMIT_NOFILE to the hard limit: the soft default (often 1024) is far below what the
    kernel allows, and every client connection holds a descriptor."""
    try:
        import resource  # not at the top: Windows has no such module
    except ImportError:  # pragma: no cover - Windows
        return OpenFiles(None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return OpenFiles(None if soft == resource.RLIM_INFINITY else soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # e.g. macOS refuses an unlimited soft limit: keep what we have
        return OpenFiles(soft)
    return OpenFiles(None if hard == resource.RLIM_INFINITY else hard, raised_from=soft)


def connections_within(open_files: int | None) -> int:
    """The most client connections that leave room, within ``open_files``, for everything else the server
    opens (``RESERVED_FILES_MIN``) and for lingering refusals."""
    if open_files is None:
        return DEFAULT_MAX_CONNECTIONS_CEILING
    reserved = max(RESERVED_FILES_MIN, open_files // 4) + MAX_LINGERING_REFUSALS
    return max(1, open_files - reserved)


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits in force, resolved at start from the settings and the open-file limit."""

    max_connections: int
    max_per_address: int
    request_head_timeout: float
    keepalive_timeout: float
    open_files: OpenFiles
    # the --max-connections asked for, when the open-file limit forced it lower
    asked_max_connections: int | None = None

    @property
    def summary(self) -> str:
        files = f"open files: {self.open_files.limit or 'no limit'}"
        if self.open_files.raised_from is not None:
            files += f" (raised from {self.open_files.raised_from})"
        lowered = ""
        if self.asked_max_connections is not None:
            lowered = f", lowered from {self.asked_max_connections} to fit the open-file limit"
        return (
            f"connections: at most {self.max_connections}{lowered}, {self.max_per_address} per address ({files}); "
            f"a request head must arrive within {self.request_head_timeout:g}s, "
            f"idle keep-alive connections close after {self.keepalive_timeout:g}s"
        )


@dataclass(frozen=True)
class ConnectionSettings:
    """The options (``None``: derived from the open-file limit at start)."""

    max_connections: int | None = None
    max_per_address: int | None = None
    request_head_timeout: float = DEFAULT_REQUEST_HEAD_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("--max-connections must be at least 1")
        if self.max_per_address is not None and self.max_per_address < 1:
            raise ValueError("--max-connections-per-address must be at least 1")
        if self.request_head_timeout <= 0 or self.keepalive_timeout <= 0:
            raise ValueError("--request-head-timeout and --keepalive-timeout must be positive")

    def resolve(self, open_files: OpenFiles) -> ConnectionLimits:
        room = connections_within(open_files.limit)
        wanted = self.max_connections or min(room, DEFAULT_MAX_CONNECTIONS_CEILING)
        max_connections = min(wanted, room)
        per_address = self.max_per_address or min(DEFAULT_PER_ADDRESS_CEILING, max(1, max_connections // 4))
        return ConnectionLimits(
            max_connections=max_connections,
            max_per_address=per_address,
            request_head_timeout=self.request_head_timeout,
            keepalive_timeout=self.keepalive_timeout,
            open_files=open_files,
            asked_max_connections=wanted if wanted > max_connections else None,
        )


def address_of(peername: Any) -> str:
    """What a client's connections are counted under: its IP address, or for IPv6 its /64 network (one
    subscriber is routinely given a whole /64, so single IPv6 addresses would bound no one)."""
    if not isinstance(peername, tuple) or not peername:
        return "unknown"
    try:
        ip = ipaddress.ip_address(peername[0])
    except ValueError:
        return str(peername[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def plain_response(status_line: str, reason: str) -> bytes:
    body = (reason + "\n").encode()
    head = (
        f"HTTP/1.1 {status_line}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGate:
    """The listening socket's protocol factory: admits connections within the limits (handing their bytes to
    aiohttp's request handler) and refuses the others."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open_connections = 0
        # refused connections by cause (``REFUSAL_CAUSES``), for metrics
        self.refused: collections.Counter[str] = collections.Counter()
        self._per_address: dict[str, int] = {}
        # admitted connections still waiting for their first request head, by their aiohttp handler
        self._awaiting_head: dict[asyncio.BaseProtocol, _AdmittedConnection] = {}
        self._lingering: set[_Refusal] = set()
        self._new_handler: Callable[[], asyncio.Protocol] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.head_timeout_response = plain_response(
            "408 Request Timeout", f"no complete request within {limits.request_head_timeout:g}s"
        )
        self._refusals = {
            reason: plain_response("503 Service Unavailable", reason)
            for reason in (TOO_MANY_FROM_ADDRESS, AT_CONNECTION_LIMIT)
        }

    async def listen(
        self, new_handler: Callable[[], asyncio.Protocol], host: str, port: int, backlog: int
    ) -> asyncio.Server:
        """Accept connections on ``host:port``; ``new_handler`` makes aiohttp's handler of an admitted one."""
        self._new_handler = new_handler
        self._loop = asyncio.get_running_loop()
        return await self._loop.create_server(self._arrival, host, port, reuse_address=True, backlog=backlog)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks a connection's first request as arrived, which ends its head timeout."""
        if self._awaiting_head:
            connection = self._awaiting_head.pop(request.protocol, None)
            if connection is not None:
                connection.head_arrived()
        return await handler(request)

    def close(self) -> None:
        """Drop refusals still lingering (admitted connections are aiohttp's to close)."""
        for refusal in list(self._lingering):
            refusal.abort()

    # -- admission ---------------------------------------------------------------------------------------------

    def _arrival(self) -> asyncio.Protocol:
        return _Arrival(self)

    def admit(self, transport: asyncio.Transport) -> None:
        address = address_of(transport.get_extra_info("peername"))
        from_address = self._per_address.get(address, 0)
        if from_address >= self.limits.max_per_address:
            self._refuse(transport, TOO_MANY_FROM_ADDRESS)
            return
        if self.open_connections >= self.limits.max_connections:
            self._refuse(transport, AT_CONNECTION_LIMIT)
            return
        self.open_connections += 1
        self._per_address[address] = from_address + 1
        self._let_in(transport, address)

    def _let_in(self, transport: asyncio.Transport, address: str) -> None:
        assert self._new_handler is not None and self._loop is not None
        connection = _AdmittedConnection(self, address, self._new_handler())
        transport.set_protocol(connection)
        handler = connection.handler
        self._awaiting_head[handler] = connection
        connection.head_timer = self._loop.call_later(
            self.limits.request_head_timeout, connection.head_timed_out, transport
        )
        handler.connection_made(transport)

    def release(self, connection: _AdmittedConnection) -> None:
        self._awaiting_head.pop(connection.handler, None)
        self.open_connections -= 1
        remaining = self._per_address[connection.address] - 1
        if remaining:
            self._per_address[connection.address] = remaining
        else:
            del self._per_address[connection.address]

    def refusal_ended(self, refusal: _Refusal) -> None:
        self._lingering.discard(refusal)

    def _refuse(self, transport: asyncio.Transport, reason: str) -> None:
        self.refused[REFUSAL_CAUSES[reason]] += 1
        transport.write(self._refusals[reason])
        if len(self._lingering) >= MAX_LINGERING_REFUSALS or not transport.can_write_eof():
            transport.close()
            return
        assert self._loop is not None
        refusal = _Refusal(self, transport)
        transport.set_protocol(refusal)
        transport.write_eof()
        self._lingering.add(refusal)
        refusal.timer = self._loop.call_later(REFUSAL_LINGER_SECONDS, refusal.abort)


class _Arrival(asyncio.Protocol):
    """A connection just accepted: it becomes admitted or refused as soon as its peer's address is known."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as asyncio.Transport subclasses, so no isinstance check
        self._gate.admit(cast(asyncio.Transport, transport))


class _AdmittedConnection(asyncio.Protocol):
    """An admitted connection: passes everything to aiohttp's handler and gives its slot back when it closes."""

    def __init__(self, gate: ConnectionGate, address: str, handler: asyncio.Protocol) -> None:
        self.gate = gate
        self.address = address
        self.handler = handler
        self.head_timer: asyncio.TimerHandle | None = None

    def head_arrived(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self, transport: asyncio.Transport) -> None:
        self.head_timer = None
        self.gate.refused[HEAD_TIMEOUT_CAUSE] += 1
        transport.write(self.gate.head_timeout_response)
        transport.close()

    def data_received(self, data: bytes) -> None:
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_arrived()
        self.gate.release(self)
        self.handler.connection_lost(exc)


class _Refusal(asyncio.Protocol):
    """A refused connection whose answer is written: drops what the client sends until it closes or the linger
    time is up."""

    def __init__(self, gate: ConnectionGate, transport: asyncio.Transport) -> None:
        self._gate = gate
        self._transport = transport
        self.timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # close our side too

    def abort(self) -> None:
        self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self._gate.refusal_ended(self)
