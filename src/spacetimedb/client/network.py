"""The network half of a connection: HTTP calls and the WebSocket, run by an asyncio loop.

The loop is either the application's own (asyncio API) or a private one on a daemon thread (threaded API).
Either way the socket hands every decoded server message, and finally the reason it closed, to ``deliver`` on
the loop's thread; the connection decides on which thread callbacks run. ``send`` and ``close`` may be called
from any thread, also before the socket is open (messages wait in order).

Like the official SDKs: a saved token is first exchanged for a short-lived one (``POST
/v1/identity/websocket-token``) that goes in the URL; the subprotocols offered are v3 then v2 BSATN; the
server's frames carry a compression tag (gzip or none; brotli is never asked for).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import aiohttp

from spacetimedb.protocol import v2
from spacetimedb.sats import DecodeError

from .errors import ConnectError, ConnectionClosed

PROTOCOLS = (v2.PROTOCOL_V3, v2.PROTOCOL_V2)
COMPRESSION_PARAMETER = {"gzip": "Gzip", "none": "None"}
MAX_V3_FRAME = 256 * 1024  # like the TypeScript SDK, bound one outgoing frame
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)

# what ``deliver`` receives: ("message", SumValue) | ("closed", error or None) | ("connect_error", error)
Inbound = tuple[str, Any]


@dataclass(frozen=True)
class ConnectionConfig:
    uri: str
    database: str
    token: str | None = None
    confirmed_reads: bool | None = None
    compression: str = "gzip"

    def http_url(self, path: str) -> str:
        return _with_scheme(self.uri, {"ws": "http", "wss": "https"}) + path

    def database_path(self, suffix: str) -> str:
        return f"/v1/database/{quote(self.database, safe='')}{suffix}"


def _with_scheme(uri: str, mapping: dict[str, str]) -> str:
    parts = urlsplit(uri if "://" in uri else "http://" + uri)
    scheme = mapping.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


async def _error_text(response: aiohttp.ClientResponse) -> str:
    text = (await response.text()).strip()
    return f"{response.status} {response.reason}" + (f": {text[:200]}" if text else "")


async def fetch_schema(session: aiohttp.ClientSession, config: ConnectionConfig) -> dict[str, Any]:
    """The database's RawModuleDef v9 JSON, from its schema route, with this project's extras that V9 cannot say
    (``event_flags``: views' primary keys, which the cache matches rows by; other servers ignore the parameter)."""
    url = config.http_url(config.database_path("/schema")) + "?version=9&event_flags=true"
    try:
        async with session.get(url, headers=_auth(config.token), timeout=HTTP_TIMEOUT) as response:
            if response.status != 200:
                raise ConnectError(
                    f"cannot read the schema of {config.database!r}: {await _error_text(response)}"
                )
            return await response.json()  # type: ignore[no-any-return]  # JSON is typed Any; the schema route returns an object
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConnectError(f"cannot reach {config.uri}: {exc}") from None


async def websocket_token(session: aiohttp.ClientSession, config: ConnectionConfig) -> str:
    """A short-lived token for the WebSocket URL, so the long-lived one never appears in a URL."""
    url = config.http_url("/v1/identity/websocket-token")
    async with session.post(url, headers=_auth(config.token), timeout=HTTP_TIMEOUT) as response:
        if response.status != 200:
            raise ConnectError(f"the server refused the token: {await _error_text(response)}")
        payload = await response.json()
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str):
        raise ConnectError("the server's websocket-token reply has no token")
    return token


def subscribe_url(config: ConnectionConfig, short_token: str | None) -> str:
    params = {}
    if short_token is not None:
        params["token"] = short_token
    params["compression"] = COMPRESSION_PARAMETER[config.compression]
    if config.confirmed_reads is not None:
        params["confirmed"] = "true" if config.confirmed_reads else "false"
    base = _with_scheme(config.uri, {"http": "ws", "https": "wss"})
    return base + config.database_path("/subscribe") + "?" + urlencode(params)


class Socket:
    """One connection's WebSocket. ``run()`` is the whole life of it, as a coroutine of the owning loop."""

    def __init__(self, config: ConnectionConfig, deliver: Callable[[Inbound], None]) -> None:
        self.config = config
        self.deliver = deliver
        self.loop: asyncio.AbstractEventLoop | None = None
        self.protocol: str | None = None
        self._outgoing: deque[bytes] = deque()
        self._wakeup: asyncio.Event | None = None
        self._closing = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._lock = threading.Lock()

    # -- any thread -------------------------------------------------------------------------------------------

    def send(self, message: bytes) -> None:
        self._outgoing.append(message)
        self._poke()

    def close(self) -> None:
        self._closing = True
        self._poke()

    def _poke(self) -> None:
        with self._lock:
            loop, wakeup = self.loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return  # run() has not started: it looks at the queue and the closing flag first thing
        try:
            if _running_in(loop):
                wakeup.set()
            else:
                loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:
            pass  # the loop is shutting down

    # -- the owning loop ----------------------------------------------------------------------------------------

    async def run(
        self, schema_needed: Callable[[dict[str, Any] | BaseException], None] | None = None
    ) -> None:
        """Fetch the schema if asked, connect, pump messages until the socket closes; never raises, and always
        ends by delivering ``closed`` or ``connect_error`` (so whoever waits for the end is not left waiting)."""
        try:
            await self._run(schema_needed)
        except Exception as exc:  # a bug or an unexpected library error: end the connection, say why
            kind = "closed" if self._ws is not None else "connect_error"
            self.deliver((kind, ConnectionClosed(f"the connection failed: {type(exc).__name__}: {exc}")))

    async def _run(self, schema_needed: Callable[[dict[str, Any] | BaseException], None] | None) -> None:
        with self._lock:
            self.loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            try:
                if schema_needed is not None:
                    try:
                        schema_needed(await fetch_schema(session, self.config))
                    except BaseException as exc:
                        schema_needed(exc)
                        raise
                ws = await self._connect(session)
            except (ConnectError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = exc if isinstance(exc, ConnectError) else ConnectError(f"cannot connect: {exc}")
                self.deliver(("connect_error", error))
                return
            self._ws = ws
            self.deliver(("closed", await self._pump(ws)))

    async def _connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        short = None if self.config.token is None else await websocket_token(session, self.config)
        url = subscribe_url(self.config, short)
        try:
            ws = await session.ws_connect(
                url, protocols=PROTOCOLS, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5)
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise ConnectError(
                f"the server refused the connection to {self.config.database!r}: {exc.status} {exc.message}"
            ) from None
        self.protocol = ws.protocol or v2.PROTOCOL_V2
        return ws

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> BaseException | None:
        sender = asyncio.create_task(self._send_loop(ws))
        error: BaseException | None = None
        reason = ""
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.BINARY:
                    for decoded in v2.decode_server_messages(v2.split_server_frame(message.data)):
                        self.deliver(("message", decoded))
                elif message.type == aiohttp.WSMsgType.TEXT:
                    error = ConnectionClosed("the server sent a text frame on a binary protocol")
                    break
                elif message.type == aiohttp.WSMsgType.ERROR:
                    error = ConnectionClosed(f"WebSocket error: {ws.exception()}")
                    break
                else:  # CLOSE, CLOSING, CLOSED
                    reason = (
                        message.extra if message.type == aiohttp.WSMsgType.CLOSE and message.extra else ""
                    )
                    break
        except DecodeError as exc:
            error = ConnectionClosed(f"cannot decode a server message: {exc}")
        finally:
            sender.cancel()
            await ws.close()
        if error is None and not self._closing and ws.close_code not in (None, 1000):
            detail = f": {reason}" if reason else ""
            error = ConnectionClosed(f"the server closed the connection (code {ws.close_code}{detail})")
        return error

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self._wakeup is not None
        batched = self.protocol == v2.PROTOCOL_V3
        while True:
            while self._outgoing:
                await ws.send_bytes(self._next_frame(batched))
            if self._closing:
                await ws.close()
                return
            await self._wakeup.wait()
            self._wakeup.clear()

    def _next_frame(self, batched: bool) -> bytes:
        first = self._outgoing.popleft()
        if not batched:
            return first
        parts = [first]
        size = len(first)
        while self._outgoing and size + len(self._outgoing[0]) <= MAX_V3_FRAME:
            size += len(self._outgoing[0])
            parts.append(self._outgoing.popleft())
        return b"".join(parts)


def _running_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
