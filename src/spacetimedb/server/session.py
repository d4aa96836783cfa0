"""One client WebSocket connection, in the server process: it moves bytes between the client and the worker.

Each frame the client sends goes to its database's worker as it is (the worker decodes and serves it); each
message the worker delivers arrives already encoded, with the offset of the transaction it reflects, and waits
in the outbox until it may be sent: at once, or for a client that asked for confirmed reads, once that offset is
durable. A sender task writes the outbox out (several messages per frame in v3).

Bounds (``ServerOptions``): at most ``max_in_flight`` of a client's frames wait in its worker (beyond that the
session stops reading the socket, so TCP pushes back on the client), and the session also waits while the
worker's channel is full; a client whose outbox holds more than ``max_outbox_bytes`` is too slow to keep up and
is dropped with a reason rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from spacetimedb.controller import RunningDatabase, WorkerGone
from spacetimedb.protocol import v2
from spacetimedb.protocol.messages import ServerEncoder, close_reason
from spacetimedb.sats import ConnectionId, Identity
from spacetimedb.sizes import format_size

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger(__name__)

FRAME_LIMIT = 512 * 1024


class Session:
    def __init__(
        self,
        server: Server,
        database: RunningDatabase,
        ws: web.WebSocketResponse,
        identity: Identity,
        connection_id: ConnectionId,
        encoder: ServerEncoder,
        compression: int,
        confirmed: bool,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.server = server
        self.database = database
        self.ws = ws
        self.identity = identity
        self.connection_id = connection_id
        # The seam's number for this session (``client`` in protocol/seam.py), set once the worker accepts it.
        # Not a second name for ``connection_id``: a client may present the same ConnectionId again on a new
        # connection, while this number belongs to one session, is never reused, and never leaves the server.
        self.client_id = 0
        self.encoder = encoder
        self.compression = compression
        self.confirmed = confirmed
        self.transport = transport
        self.outbox: deque[tuple[int | None, bytes]] = deque()
        self.outbox_bytes = 0
        self._wakeup = asyncio.Event()
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._submitted = 0
        self._completed = 0
        self._close: tuple[int, str] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._max_in_flight = server.options.max_in_flight
        self._max_outbox_bytes = server.options.max_outbox_bytes

    # -- what the worker sends (ClientSink) ------------------------------------------------------------------------

    def deliver(self, offset: int | None, payload: bytes) -> None:
        if self._close is not None:
            return  # nothing more reaches a client that is being closed
        self.outbox.append((offset, payload))
        self.outbox_bytes += len(payload)
        if self.outbox_bytes > self._max_outbox_bytes:
            self.outbox.clear()
            self.outbox_bytes = 0
            self.close(
                1008,
                f"client too slow: more than {format_size(self._max_outbox_bytes)} of messages wait to be sent to it",
                abort=True,
            )
            return
        if offset is None or not self.confirmed or offset <= self.database.durable.value:
            self._wakeup.set()
        else:  # not sendable before its transaction is durable
            self.database.wait_for_durable(self)

    def frames_done(self, count: int) -> None:
        self._completed += count
        if self._submitted - self._completed < self._max_in_flight:
            self._capacity.set()

    def durable_advanced(self) -> None:
        self._wakeup.set()

    def close(self, code: int, reason: str, abort: bool = False) -> None:
        """Close the connection with a reason. With ``abort`` (a client too slow to read) the TCP connection is
        dropped right after the close frame is queued, since that frame would wait behind everything the
        client has not read; otherwise only a client that does not complete the close within 2 s is."""
        if self._close is None:
            self._close = (code, reason)
            self._wakeup.set()
            self._capacity.set()
            self._closer = asyncio.ensure_future(self._close_now(code, reason, abort))

    async def _close_now(self, code: int, reason: str, abort: bool) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=close_reason(reason)), 2.0)
        except (TimeoutError, ConnectionError):
            abort = True
        if abort and self.transport is not None:
            self.transport.abort()

    @property
    def closing(self) -> tuple[int, str] | None:
        return self._close

    # -- serving -----------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it ends (InitialConnection has been sent by the caller)."""
        sender = asyncio.create_task(self._send_loop())
        try:
            await self._receive_loop()
        finally:
            sender.cancel()
            try:
                await sender
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("sender of %s failed", self.connection_id)

    async def _receive_loop(self) -> None:
        ws = self.ws
        # text frames arrive undecoded too (``decode_text=False``): the worker decodes every frame
        frame_type = WSMsgType.BINARY if self.encoder.binary else WSMsgType.TEXT
        worker = self.database.worker
        async for message in ws:
            if self._close is not None:
                break
            if message.type == frame_type:
                self._forward(message.data)
            elif message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                kind = "text" if message.type == WSMsgType.TEXT else "binary"
                self.close(1003, f"{kind} frames are not part of the {self.encoder.name} protocol")
            elif message.type == WSMsgType.ERROR:
                break
            if self._close is not None:
                break
            while self._submitted - self._completed >= self._max_in_flight and self._close is None:
                self._capacity.clear()
                await self._capacity.wait()
            if not worker.writable.is_set():
                await worker.writable.wait()
        if self._closer is not None:
            await self._closer

    def _forward(self, data: bytes) -> None:
        try:
            self.database.frame(self.client_id, data)
        except WorkerGone as gone:
            self.close(1011, f"the database stopped: {gone}")
            return
        self._submitted += 1

    async def _send_loop(self) -> None:
        ws = self.ws
        batched = self.encoder.batched
        binary = self.encoder.binary
        try:
            while self._close is None:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._close is None:
                    items = self._ready(FRAME_LIMIT if batched else 1)
                    if not items:
                        break
                    if binary:
                        await ws.send_bytes(v2.server_frame(items, self.compression))
                    else:
                        for text in items:
                            await ws.send_frame(text, WSMsgType.TEXT)
        except ConnectionError:
            pass  # the client went away; the receive loop ends too

    def _ready(self, limit: int) -> list[bytes]:
        """Pop the messages that may be sent now, in order, up to ``limit`` bytes (at least one)."""
        outbox = self.outbox
        durable = self.database.durable.value
        confirmed = self.confirmed
        out: list[bytes] = []
        size = 0
        while outbox:
            offset, payload = outbox[0]
            if confirmed and offset is not None and offset > durable:
                self.database.wait_for_durable(self)
                break
            outbox.popleft()
            out.append(payload)
            size += len(payload)
            self.outbox_bytes -= len(payload)
            if size >= limit:
                break
        return out
