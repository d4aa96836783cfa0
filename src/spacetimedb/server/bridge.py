"""The link between one database's host thread and the event loop: sessions, outboxes, durable offsets.

Host-side callbacks (transaction events, reducer replies) run on the host thread. They only append encoded
messages to the sessions' outboxes and mark those sessions dirty; when the host's queue runs dry the bridge
wakes the event loop once for the whole batch. Messages carry the offset of the transaction they reflect, and a
session that asked for confirmed reads gets each one only when that offset is durable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from spacetimedb.host.module_host import ModuleHost, TransactionEvent
from spacetimedb.protocol import v2
from spacetimedb.subscription import TableDelta

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)


def table_update_v2(delta: TableDelta) -> bytes:
    """One TableUpdate of a query's delta, encoded once and shared by every subscriber."""
    cached = delta.cache.get("v2")
    if cached is None:
        name = delta.table_name.encode()
        cached = delta.cache["v2"] = (
            len(name).to_bytes(4, "little")
            + name
            + b"\x01\x00\x00\x00\x00"  # one rows entry: PersistentTable
            + v2.encode_row_list(delta.inserts)
            + v2.encode_row_list(delta.deletes)
        )
    return cached


def query_set_updates_v2(updates: Iterable[tuple[int, TableDelta]]) -> list[bytes]:
    """Group a client's (query set, delta) pairs into encoded QuerySetUpdates."""
    by_set: dict[int, list[bytes]] = {}
    for query_set_id, delta in updates:
        by_set.setdefault(query_set_id, []).append(table_update_v2(delta))
    return [
        query_set_id.to_bytes(4, "little") + len(tables).to_bytes(4, "little") + b"".join(tables)
        for query_set_id, tables in by_set.items()
    ]


class DatabaseBridge:
    """Per running host: its sessions, their outboxes' wake-ups, and durable-offset waiters."""

    def __init__(self, host: ModuleHost, loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self.loop = loop
        self.sessions: dict[Any, Session] = {}
        durable = host.db.durable_offset()
        self.durable_offset = -1 if durable is None else durable
        self._dirty: set[Session] = set()
        self._dirty_lock = threading.Lock()
        self._wake_scheduled = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_seq = itertools.count()
        self._latest_durable = self.durable_offset
        self._durable_scheduled = False
        self.closed = False
        host.add_transaction_listener(self._on_transaction)
        host.add_batch_listener(self.flush_threadsafe)
        host.db.add_durable_listener(self._on_durable)

    # -- host thread -------------------------------------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        sessions = self.sessions
        for client, updates in event.updates.updates.items():
            if client == event.caller_client:
                continue  # the caller hears about its own transaction in its reducer result
            session = sessions.get(client)
            if session is not None:
                session.push_transaction(event.offset, updates)
        for client, errors in event.updates.errors.items():
            session = sessions.get(client)
            if session is not None:
                for query_set_id, message in errors:
                    session.push_subscription_error(event.offset, query_set_id, message)
        if event.disconnect_all:
            for session in list(sessions.values()):
                session.close_threadsafe(1012, "the module was updated; reconnect")

    def mark_dirty(self, session: Session) -> None:
        with self._dirty_lock:
            self._dirty.add(session)

    def flush_threadsafe(self) -> None:
        """Wake the event loop once for every session that got messages since the last wake-up."""
        with self._dirty_lock:
            if self._wake_scheduled or not self._dirty:
                return
            self._wake_scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._wake_dirty)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def _on_durable(self, offset: int) -> None:
        """Durability thread: remember the offset and wake the loop (at most one pending wake-up)."""
        self._latest_durable = offset
        if self._durable_scheduled:
            return
        self._durable_scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._durable_advanced)
        except RuntimeError:
            pass

    # -- event loop ----------------------------------------------------------------------------------------------

    def _wake_dirty(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
            self._wake_scheduled = False
        for session in dirty:
            session.wake()

    def _durable_advanced(self) -> None:
        self._durable_scheduled = False
        offset = self._latest_durable
        if offset <= self.durable_offset:
            return
        self.durable_offset = offset
        waiters = self._waiters
        while waiters and waiters[0][0] <= offset:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)
        for session in self.sessions.values():
            if session.confirmed and session.has_pending():
                session.wake()

    async def wait_durable(self, offset: int | None, timeout: float = 30.0) -> None:
        """Return once ``offset`` is durable (at once for None: a transaction that changed nothing)."""
        if offset is None or offset <= self.durable_offset:
            return
        future: asyncio.Future[None] = self.loop.create_future()
        heapq.heappush(self._waiters, (offset, next(self._waiter_seq), future))
        await asyncio.wait_for(future, timeout)

    def register(self, session: Session) -> None:
        self.sessions[session.client_id] = session

    def unregister(self, session: Session) -> None:
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        with self._dirty_lock:
            self._dirty.discard(session)

    def host_failed(self, reason: str) -> None:
        """The host panicked: drop every client (they reconnect to a fresh host) and fail the waiters."""
        self.closed = True
        for session in list(self.sessions.values()):
            session.close_threadsafe(1011, reason)
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(RuntimeError(reason))
        self._waiters.clear()


def drain_ready(
    outbox: deque[tuple[int | None, Any]], durable: int, confirmed: bool, limit: int
) -> list[Any]:
    """Pop the messages that may be sent now, in order, up to ``limit`` bytes (at least one)."""
    out: list[Any] = []
    size = 0
    while outbox:
        offset, payload = outbox[0]
        if confirmed and offset is not None and offset > durable:
            break
        outbox.popleft()
        out.append(payload)
        size += len(payload)
        if size >= limit:
            break
    return out
