"""One client WebSocket connection: reading its messages, and its outbox of messages to send.

Reading runs on the event loop; reducer calls go to the host thread, subscriptions and one-off queries to a
worker thread (they read under the datastore's reader lock). Whatever produces a message appends it, already
encoded, to the outbox; a sender task writes it out (several per frame in v3), holding back, for a client that
asked for confirmed reads, every message whose transaction is not durable yet.

Bounds (``ServerOptions``): at most ``max_in_flight`` reducer calls per client are queued (beyond that the session
stops reading the socket, so TCP pushes back on the client); a client whose outbox passes ``max_outbox`` messages
is too slow to keep up and is disconnected with a reason rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from spacetimedb.host.module_host import CallOutcome, HostFailedError, ReducerCall
from spacetimedb.protocol import v2
from spacetimedb.sats import ConnectionId, DecodeError, Identity
from spacetimedb.subscription import SubscriptionError, TableDelta

from .bridge import DatabaseBridge, drain_ready
from .codecs import ProtocolCodec

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger(__name__)

FRAME_LIMIT = 512 * 1024


class Session:
    def __init__(
        self,
        server: Server,
        bridge: DatabaseBridge,
        ws: web.WebSocketResponse,
        identity: Identity,
        token: str,
        connection_id: ConnectionId,
        codec: ProtocolCodec,
        compression: int,
        confirmed: bool,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.server = server
        self.bridge = bridge
        self.host = bridge.host
        self.ws = ws
        self.identity = identity
        self.token = token
        self.connection_id = connection_id
        self.client_id = connection_id
        self.codec = codec
        self.compression = compression
        self.confirmed = confirmed
        self.transport = transport
        self.is_owner = identity == self.host.owner_identity
        self.outbox: deque[tuple[int | None, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._submitted = 0  # written on the loop only
        self._completed = 0  # written on the host thread only
        self._close: tuple[int, str] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._calls: list[ReducerCall] = []
        self._loop = bridge.loop
        self._max_in_flight = server.options.max_in_flight
        self._max_outbox = server.options.max_outbox

    # -- producers (any thread) ------------------------------------------------------------------------------

    def push(self, offset: int | None, payload: Any) -> None:
        self.outbox.append((offset, payload))
        if len(self.outbox) > self._max_outbox and self._close is None:
            self.close_threadsafe(1008, "client too slow: its outgoing message queue is full", abort=True)
        if offset is None or not self.confirmed:
            self.bridge.mark_dirty(self)
        # else: not sendable before its transaction is durable; the durable-offset wake-up sends it

    def push_transaction(self, offset: int | None, updates: list[tuple[int, TableDelta]]) -> None:
        self.push(offset, self.codec.transaction_update(updates))

    def push_subscription_error(self, offset: int | None, query_set_id: int, message: str) -> None:
        self.push(offset, self.codec.subscription_error(None, query_set_id, message))

    def close_threadsafe(self, code: int, reason: str, abort: bool = False) -> None:
        try:
            self._loop.call_soon_threadsafe(self.request_close, code, reason, abort)
        except RuntimeError:
            pass

    def _reducer_done(self, request_id: int, reducer: str, args: Any, outcome: CallOutcome) -> None:
        """Host thread: the reply of one of this client's calls."""
        self._completed += 1
        payload = self.codec.reducer_result(request_id, reducer, args, outcome, self)
        self.push(outcome.offset if outcome.ok else None, payload)

    # -- event loop ------------------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wakeup.set()
        if self._submitted - self._completed < self._max_in_flight:
            self._capacity.set()

    def has_pending(self) -> bool:
        return bool(self.outbox)

    def request_close(self, code: int, reason: str, abort: bool = False) -> None:
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
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), 2.0)
        except (TimeoutError, ConnectionError):
            abort = True
        if abort and self.transport is not None:
            self.transport.abort()

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
        async for message in ws:
            if self._close is not None:
                break
            if (message.type == WSMsgType.BINARY and self.codec.binary) or (
                message.type == WSMsgType.TEXT and not self.codec.binary
            ):
                self._handle_frame(message.data)
            elif message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                kind = "text" if message.type == WSMsgType.TEXT else "binary"
                self.request_close(1003, f"{kind} frames are not part of the {self.codec.name} protocol")
            elif message.type == WSMsgType.ERROR:
                break
            if self._close is not None:
                break
            while self._submitted - self._completed >= self._max_in_flight and self._close is None:
                self._capacity.clear()
                await self._capacity.wait()
        if self._closer is not None:
            await self._closer

    def _handle_frame(self, data: bytes | str) -> None:
        try:
            messages = self.codec.decode_client(data)
        except DecodeError as exc:
            self.request_close(1011, f"invalid message: {exc}"[:120])
            return
        try:
            for message in messages:
                try:
                    self.codec.dispatch(message, self)
                except DecodeError as exc:
                    self.request_close(1011, f"invalid message: {exc}"[:120])
                    return
        finally:
            self._submit_calls()

    async def _send_loop(self) -> None:
        ws = self.ws
        batched = self.codec.batched
        try:
            while self._close is None:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._close is None:
                    items = drain_ready(
                        self.outbox, self.bridge.durable_offset, self.confirmed, FRAME_LIMIT if batched else 1
                    )
                    if not items:
                        break
                    if self.codec.binary:
                        await ws.send_bytes(v2.server_frame(items, self.compression))
                    else:
                        for text in items:
                            await ws.send_str(text)
        except ConnectionError:
            pass  # the client went away; the receive loop ends too

    # -- requests (event loop) --------------------------------------------------------------------------------

    def call_reducer(self, request_id: int, reducer: str, args: Any, json_args: bool = False) -> None:
        """Collect a call; the calls of one frame go to the host thread together (``_submit_calls``)."""
        reply = functools.partial(self._reducer_done, request_id, reducer, args)
        self._calls.append(
            ReducerCall(reducer, args, self.identity, self.connection_id, self.client_id, reply, json_args)
        )

    def _submit_calls(self) -> None:
        calls = self._calls
        if not calls:
            return
        self._calls = []
        self._submitted += len(calls)
        try:
            self.host.call_reducers(calls)
        except HostFailedError as exc:
            self._submitted -= len(calls)
            for call in calls:
                request_id, reducer, args = call.reply.args  # type: ignore[union-attr]
                self.outbox.append(
                    (None, self.codec.reducer_failed(request_id, reducer, args, str(exc), self))
                )
            self.wake()

    def subscribe(self, request_id: int, query_set_id: int, queries: list[str], multi: bool = True) -> None:
        self._in_worker(self._subscribe_sync, request_id, query_set_id, queries, multi)

    def unsubscribe(self, request_id: int, query_set_id: int, send_rows: bool) -> None:
        self._in_worker(self._unsubscribe_sync, request_id, query_set_id, send_rows)

    def one_off_query(self, request_id: Any, query: str) -> None:
        self._in_worker(self._one_off_sync, request_id, query)

    def push_now(self, payload: Any) -> None:
        """A reply produced on the loop itself (e.g. for a request the server cannot serve)."""
        self.outbox.append((None, payload))
        self.wake()

    def _in_worker(self, fn: Any, *args: Any) -> None:
        future = self._loop.run_in_executor(None, fn, *args)
        future.add_done_callback(self._worker_done)

    def _worker_done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("request of %s failed", self.connection_id, exc_info=exc)
        self.wake()

    # -- worker threads: reads under the reader lock ------------------------------------------------------------

    def _subscribe_sync(self, request_id: int, query_set_id: int, queries: list[str], multi: bool) -> None:
        manager = self.host.subscriptions
        db = self.host.db
        tx = db.begin_tx()
        try:
            with manager.lock:  # nothing can be evaluated for this client before its rows are queued
                try:
                    tables = manager.subscribe(
                        self.client_id, query_set_id, queries, self.identity, self.is_owner, tx
                    )
                except SubscriptionError as exc:
                    self.push(None, self.codec.subscription_error(request_id, query_set_id, str(exc)))
                    return
                offset = db.next_offset - 1
                self.push(
                    offset if offset >= 0 else None,
                    self.codec.subscribe_applied(request_id, query_set_id, tables, multi),
                )
        finally:
            tx.release()

    def _unsubscribe_sync(self, request_id: int, query_set_id: int, send_rows: bool) -> None:
        manager = self.host.subscriptions
        tx = self.host.db.begin_tx()
        try:
            with manager.lock:
                try:
                    tables = manager.unsubscribe(self.client_id, query_set_id, tx if send_rows else None)
                except SubscriptionError as exc:
                    self.push(None, self.codec.subscription_error(request_id, query_set_id, str(exc)))
                    return
                self.push(None, self.codec.unsubscribe_applied(request_id, query_set_id, tables))
        finally:
            tx.release()

    def _one_off_sync(self, request_id: Any, query: str) -> None:
        from .sql_runner import one_off_rows

        try:
            tables = one_off_rows(self.host, query, self.identity, self.is_owner)
        except Exception as exc:
            self.push(None, self.codec.one_off_result(request_id, None, str(exc)))
            return
        self.push(None, self.codec.one_off_result(request_id, tables, None))
