"""``DbConnection``: one client connection to a database, its cache, reducers, subscriptions and callbacks.

This file owns the connection itself: the socket's driving, the requests it sends and the messages it applies.
Its builder is in ``builder.py``, the ``conn.db`` / ``conn.reducers`` / ``conn.procedures`` accessors in
``handles.py``, subscription handles in ``subscriptions.py`` and ``Pending`` in ``pending.py``; all of them are
still importable from here.

Two ways to drive it, as in the official SDKs:

* threads -- ``builder().build()`` runs the socket on a private daemon thread; received messages wait in an
  inbox until the application processes them: ``frame_tick()`` (a game loop, each frame), ``run_threaded()``
  (a thread that processes them as they come), ``run()`` (block the calling thread until disconnected) or
  ``advance_one_message()``. Callbacks run on whichever thread processes.
* asyncio -- ``await builder().build_async()`` runs the socket in the running loop and processes each message
  as it arrives; callbacks run in the loop; ``await conn.run_async()`` waits for the end.

Message semantics follow protocol v2 and the TypeScript SDK (``db_connection_impl.ts``): the caller's own
reducer results carry its deltas (``ReducerResult``), other transactions arrive as ``TransactionUpdate``;
row callbacks run after the whole message has been applied to the cache, then reducer callbacks, then the
call's future resolves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from spacetimedb.protocol import v2
from spacetimedb.sats import STRING, ConnectionId, DecodeError, Identity, SumValue, Timestamp, codec

from .builder import DbConnectionBuilder
from .cache import DELETE, INSERT, Operation, PendingCallback, TableCache
from .errors import (
    ConnectError,
    ConnectionClosed,
    ProcedureError,
    QueryError,
    ReducerError,
    SchemaError,
    SpacetimeError,
    SubscriptionFailed,
)
from .events import (
    ErrorEvent,
    Event,
    EventContext,
    ReducerEvent,
    ReducerStatus,
    SubscribeAppliedEvent,
    TransactionEvent,
    UnsubscribeAppliedEvent,
)
from .handles import BTreeIndex, RemoteProcedures, RemoteReducers, RemoteTables, TableHandle, UniqueIndex
from .network import Inbound, Socket
from .pending import Pending, ReducerCall
from .schema import ModuleSchema, ProcedureSchema, TableSchema
from .subscriptions import SubscriptionBuilder, SubscriptionHandle

log = logging.getLogger("spacetimedb.client")
C = TypeVar("C", bound="DbConnection")
SCHEMA_TIMEOUT_SECONDS = 30.0


# ---- the connection ---------------------------------------------------------------------------------------------


class DbConnection:
    """A connection to one database. Make one with ``DbConnection.builder()``.

    Generated bindings subclass it with their schema and typed accessors; used directly, it reads the schema
    from the server (so rows are namedtuples of their columns and reducers take their parameters by name).
    """

    MODULE: ClassVar[ModuleSchema | None] = None
    TABLES_CLASS: ClassVar[type[RemoteTables]] = RemoteTables
    REDUCERS_CLASS: ClassVar[type[RemoteReducers]] = RemoteReducers
    PROCEDURES_CLASS: ClassVar[type[RemoteProcedures]] = RemoteProcedures

    identity: Identity | None
    connection_id: ConnectionId | None
    token: str | None

    @classmethod
    def builder(cls: type[C]) -> DbConnectionBuilder[C]:
        return DbConnectionBuilder(cls)

    def __init__(self, builder: DbConnectionBuilder[Any], module: ModuleSchema | None) -> None:
        self.config = builder._config()
        self.identity = None
        self.connection_id = None
        self.token = builder._token
        self._on_connect = builder._on_connect
        self._on_disconnect = builder._on_disconnect
        self._on_connect_error = builder._on_connect_error
        # a failed connect that no on_connect_error callback handled: run() raises it
        self._unhandled_connect_error: ConnectError | None = None
        self._lock = threading.RLock()
        self._inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._async_closed: asyncio.Event | None = None
        self._asyncio = False
        self._request_ids = itertools.count()
        self._query_set_ids = itertools.count()
        self._callback_ids = itertools.count(1)
        self._calls: dict[int, tuple[str, tuple[Any, ...], ReducerCall]] = {}
        self._queries: dict[int, tuple[str, Pending[dict[str, list[Any]]]]] = {}
        self._procedure_calls: dict[int, tuple[ProcedureSchema, Pending[Any]]] = {}
        self._subscriptions: dict[int, SubscriptionHandle] = {}
        self._reducer_callbacks: dict[str, dict[int, Callable[..., None]]] = {}
        self._caches: dict[str, TableCache] = {}
        self._module: ModuleSchema | None = None
        self._socket = Socket(self.config, self._deliver)
        self.db: Any = self.TABLES_CLASS(self)
        self.reducers: Any = self.REDUCERS_CLASS(self)
        self.procedures: Any = self.PROCEDURES_CLASS(self)
        if module is not None:
            self._set_module(module)
        self.is_active = False

    # -- setup ------------------------------------------------------------------------------------------------

    @property
    def module(self) -> ModuleSchema:
        if self._module is None:
            raise SchemaError("the module schema is not known yet")
        return self._module

    def _set_module(self, module: ModuleSchema) -> None:
        self._module = module
        self._caches = {name: TableCache(schema) for name, schema in module.tables.items()}

    def _start_threaded(self) -> None:
        schema_result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        need_schema = self._module is None

        def network_main() -> None:
            asyncio.run(self._socket.run(schema_result.set_result if need_schema else None))

        threading.Thread(
            target=network_main, name=f"spacetimedb-net-{self.config.database}", daemon=True
        ).start()
        if need_schema:
            result = schema_result.result(SCHEMA_TIMEOUT_SECONDS)
            if isinstance(result, BaseException):
                raise result
            self._set_module(ModuleSchema.from_raw_v9(result))

    async def _start_async(self) -> None:
        self._asyncio = True
        self._async_closed = asyncio.Event()
        loop = asyncio.get_running_loop()
        schema_result: asyncio.Future[Any] = loop.create_future()
        need_schema = self._module is None
        self._network_task = loop.create_task(
            self._socket.run(schema_result.set_result if need_schema else None)
        )
        if need_schema:
            result = await schema_result
            if isinstance(result, BaseException):
                raise result
            self._set_module(ModuleSchema.from_raw_v9(result))

    # -- driving it ---------------------------------------------------------------------------------------------

    def _deliver(self, item: Inbound) -> None:
        """Network thread or loop: queue the item (threads) or process it now (asyncio)."""
        if self._asyncio:
            self._process(item)
        else:
            self._inbox.put(item)

    def frame_tick(self) -> int:
        """Process every message received so far, on this thread, without waiting; returns how many."""
        self._require_threaded("frame_tick")
        processed = 0
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return processed
            self._process(item)
            processed += 1

    def advance_one_message(self, timeout: float | None = None) -> bool:
        """Wait (up to ``timeout`` seconds) for one message and process it; False if none came."""
        self._require_threaded("advance_one_message")
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return False
        self._process(item)
        return True

    def run(self) -> None:
        """Process messages on this thread as they arrive, until the connection ends.

        Raises ``ConnectError`` if the connection could not be made (no such database, a refused token, no server)
        and no ``on_connect_error`` callback was registered to handle that.
        """
        self._require_threaded("run")
        self._process_until_closed()
        self._raise_unhandled_connect_error()

    def _process_until_closed(self) -> None:
        while not self._closed.is_set():
            self._process(self._inbox.get())

    def _raise_unhandled_connect_error(self) -> None:
        error = self._unhandled_connect_error
        if error is not None:
            self._unhandled_connect_error = None  # raised once, by whichever run() ends first
            raise error

    def run_threaded(self) -> threading.Thread:
        """Process messages on a new daemon thread as they arrive, until the connection ends."""
        self._require_threaded("run_threaded")
        # a failed connect is logged (or given to on_connect_error), not raised on a thread nobody joins
        thread = threading.Thread(
            target=self._process_until_closed, name=f"spacetimedb-{self.config.database}", daemon=True
        )
        thread.start()
        return thread

    async def run_async(self) -> None:
        """asyncio: wait until the connection ends (messages are processed by the loop meanwhile)."""
        if self._async_closed is None:
            raise SpacetimeError("run_async() needs a connection made with build_async()")
        await self._async_closed.wait()
        self._raise_unhandled_connect_error()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """True once the connection has ended (and its disconnect callbacks ran)."""
        return self._closed.wait(timeout)

    def _require_threaded(self, what: str) -> None:
        if self._asyncio:
            raise SpacetimeError(f"{what}() is for threaded connections; this one is driven by asyncio")

    # -- requests -----------------------------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Close the connection; ``on_disconnect`` runs when the close has been processed."""
        self._socket.close()

    def subscription_builder(self) -> SubscriptionBuilder:
        return SubscriptionBuilder(self)

    def one_off_query(self, sql: str) -> Pending[dict[str, list[Any]]]:
        """Run one SELECT once; the result maps each table name to its rows (not cached, no callbacks)."""
        request_id = self._next_request_id()
        pending: Pending[dict[str, list[Any]]] = Pending()
        with self._lock:
            self._queries[request_id] = (sql, pending)
        self._send(v2.encode_client_message(v2.ONE_OFF_QUERY, request_id, sql))
        return pending

    def call_reducer(self, reducer: str, *args: Any, **kwargs: Any) -> ReducerCall:
        return self.reducers.call(reducer, *args, **kwargs)  # type: ignore[no-any-return]  # the reducers accessor is generated, typed Any

    def call_procedure(self, procedure: str, *args: Any, **kwargs: Any) -> Pending[Any]:
        """Call a procedure; the answer is its return value (``ProcedureError`` if it failed)."""
        schema = self.module.procedure(procedure)
        encoded = schema.encode_args(schema.bind(args, kwargs))
        request_id = self._next_request_id()
        pending: Pending[Any] = Pending()
        with self._lock:
            self._procedure_calls[request_id] = (schema, pending)
        self._send(v2.encode_client_message(v2.CALL_PROCEDURE, request_id, 0, procedure, encoded))
        return pending

    def _call_reducer(self, reducer: str, args: tuple[Any, ...]) -> ReducerCall:
        schema = self.module.reducer(reducer)
        if schema.lifecycle is not None:
            raise SchemaError(
                f"{reducer} is a lifecycle reducer ({schema.lifecycle}); clients cannot call it"
            )
        encoded = schema.encode_args(args)
        request_id = self._next_request_id()
        call: ReducerCall = Pending()
        with self._lock:
            self._calls[request_id] = (reducer, args, call)
        self._send(v2.encode_client_message(v2.CALL_REDUCER, request_id, 0, reducer, encoded))
        return call

    def _register_subscription(self, handle: SubscriptionHandle) -> None:
        handle.query_set_id = next(self._query_set_ids)
        with self._lock:
            self._subscriptions[handle.query_set_id] = handle
        self._send(
            v2.encode_client_message(
                v2.SUBSCRIBE, self._next_request_id(), (handle.query_set_id,), handle.queries
            )
        )

    def _next_request_id(self) -> int:
        return next(self._request_ids) & 0xFFFF_FFFF

    def _send(self, message: bytes) -> None:
        if self._closed.is_set():
            raise ConnectionClosed("the connection is closed")
        self._socket.send(message)

    # -- processing what arrives (one message at a time, under the lock) -------------------------------------------

    def _process(self, item: Inbound) -> None:
        kind, payload = item
        with self._lock:
            if kind == "message":
                try:
                    self._on_message(payload)
                except DecodeError as exc:
                    log.error("cannot decode rows of a server message: %s", exc)
                    self.disconnect()
            elif kind == "closed":
                self._on_closed(payload)
            elif kind == "connect_error":
                self._on_failed_connect(payload)

    def _context(self, event: Event | None) -> EventContext:
        return EventContext(self, event)

    def _on_message(self, message: SumValue) -> None:
        handler = _HANDLERS.get(message.tag)
        if handler is None:
            log.warning("ignoring server message with tag %d", message.tag)
            return
        handler(self, message.value)

    def _on_initial_connection(self, fields: tuple[Any, ...]) -> None:
        self.identity, self.connection_id, token = fields
        if self.token is None:  # like the TS SDK, keep the long-lived token we came with
            self.token = token
        self.is_active = True
        if self._on_connect is not None:
            _invoke(self._on_connect, self, self.identity, self.token)

    def _on_subscribe_applied(self, fields: tuple[Any, ...]) -> None:
        _, (query_set_id,), (tables,) = fields
        handle = self._subscriptions.get(query_set_id)
        if handle is None:
            log.error("SubscribeApplied for unknown query set %d", query_set_id)
            return
        ctx = self._context(SubscribeAppliedEvent())
        pending = self._apply(self._rows_as(tables, INSERT), {})
        handle.is_active = True
        if handle._on_applied is not None:
            _invoke(handle._on_applied, ctx)
        self._dispatch(ctx, pending)

    def _on_unsubscribe_applied(self, fields: tuple[Any, ...]) -> None:
        _, (query_set_id,), rows = fields
        handle = self._subscriptions.pop(query_set_id, None)
        if handle is None:
            log.error("UnsubscribeApplied for unknown query set %d", query_set_id)
            return
        ctx = self._context(UnsubscribeAppliedEvent())
        pending = self._apply(self._rows_as(rows[0], DELETE), {}) if rows is not None else []
        handle.is_active = False
        handle.is_ended = True
        if handle._on_end is not None:
            _invoke(handle._on_end, ctx)
        self._dispatch(ctx, pending)

    def _on_subscription_error(self, fields: tuple[Any, ...]) -> None:
        request_id, (query_set_id,), text = fields
        error = SubscriptionFailed(text)
        ctx = self._context(ErrorEvent(error))
        handle = self._subscriptions.pop(query_set_id, None)
        if handle is not None:
            handle.is_active = False
            handle.is_ended = True
            if handle._on_error is not None:
                _invoke(handle._on_error, ctx, error)
            else:
                log.error("subscription %s failed: %s", handle.queries, text)
        if request_id is None:
            # the set was already applied and its rows cannot be told apart from other sets' rows
            log.error("disconnecting: an applied subscription failed: %s", text)
            self.disconnect()

    def _on_transaction_update(self, fields: tuple[Any, ...]) -> None:
        (query_sets,) = fields
        ctx = self._context(TransactionEvent())
        operations, events = self._query_set_operations(query_sets)
        self._dispatch(ctx, self._apply(operations, events))

    def _on_reducer_result(self, fields: tuple[Any, ...]) -> None:
        request_id, timestamp, outcome = fields
        call = self._calls.pop(request_id, None)
        if call is None:  # not ours to report as a reducer event; its rows still count
            if outcome.tag == v2.OUTCOME_OK:
                self._on_transaction_update(outcome.value[1])
            return
        reducer, args, pending = call
        event = self._reducer_event(request_id, reducer, args, timestamp, outcome)
        ctx = self._context(event)
        if outcome.tag == v2.OUTCOME_OK:
            (query_sets,) = outcome.value[1]
            operations, events = self._query_set_operations(query_sets)
            self._dispatch(ctx, self._apply(operations, events))
        for callback in list(self._reducer_callbacks.get(reducer, {}).values()):
            _invoke(callback, ctx, *args)
        if event.committed:
            pending._complete(event)
        else:
            pending._complete(error=ReducerError(event))

    def _reducer_event(
        self, request_id: int, reducer: str, args: tuple[Any, ...], timestamp: Timestamp, outcome: SumValue
    ) -> ReducerEvent:
        status, error = ReducerStatus.COMMITTED, None
        if outcome.tag == v2.OUTCOME_ERR:
            status, error = ReducerStatus.FAILED, _error_text(outcome.value)
        elif outcome.tag == v2.OUTCOME_INTERNAL_ERROR:
            status, error = ReducerStatus.INTERNAL_ERROR, outcome.value
        return ReducerEvent(
            reducer=reducer,
            args=args,
            status=status,
            error=error,
            timestamp=timestamp,
            caller_identity=self.identity,
            caller_connection_id=self.connection_id,
            request_id=request_id,
        )

    def _on_one_off_result(self, fields: tuple[Any, ...]) -> None:
        request_id, result = fields
        entry = self._queries.pop(request_id, None)
        if entry is None:
            return
        sql, pending = entry
        if result.tag == 1:
            pending._complete(error=QueryError(f"{result.value} (query: {sql})"))
            return
        (tables,) = result.value
        out: dict[str, list[Any]] = {}
        try:
            for name, (_, data) in tables:
                out.setdefault(name, []).extend(row for _, row in self.module.table(name).decode_rows(data))
        except (SchemaError, DecodeError) as exc:
            pending._complete(error=QueryError(f"cannot decode the result of {sql!r}: {exc}"))
            return
        pending._complete(out)

    def _on_procedure_result(self, fields: tuple[Any, ...]) -> None:
        status, _timestamp, _duration, request_id = fields
        entry = self._procedure_calls.pop(request_id, None)
        if entry is None:
            return
        schema, pending = entry
        if status.tag != 0:
            pending._complete(error=ProcedureError(f"procedure {schema.name} failed: {status.value}"))
            return
        try:
            value = schema.decode_return(bytes(status.value))
        except (DecodeError, ValueError) as exc:
            pending._complete(
                error=ProcedureError(f"cannot decode what procedure {schema.name} returned: {exc}")
            )
            return
        pending._complete(value)

    # -- cache updates -----------------------------------------------------------------------------------------

    def _rows_as(self, tables: Sequence[Any], kind: str) -> dict[str, list[Operation]]:
        operations: dict[str, list[Operation]] = {}
        for name, (_, data) in tables:
            schema = self._table_schema(name)
            if schema is not None:
                ops = operations.setdefault(name, [])
                ops.extend((kind, raw, row) for raw, row in schema.decode_rows(data))
        return operations

    def _query_set_operations(
        self, query_sets: Sequence[Any]
    ) -> tuple[dict[str, list[Operation]], dict[str, list[Any]]]:
        """Every query set's rows merged per table, inserts before deletes per update, in arrival order."""
        operations: dict[str, list[Operation]] = {}
        events: dict[str, list[Any]] = {}
        for _query_set_id, tables in query_sets:
            for name, updates in tables:
                schema = self._table_schema(name)
                if schema is None:
                    continue
                for update in updates:
                    if update.tag == 0:
                        (_, inserted), (_, deleted) = update.value
                        ops = operations.setdefault(name, [])
                        ops.extend((INSERT, raw, row) for raw, row in schema.decode_rows(inserted))
                        ops.extend((DELETE, raw, row) for raw, row in schema.decode_rows(deleted))
                    else:
                        ((_, data),) = update.value
                        events.setdefault(name, []).extend(row for _, row in schema.decode_rows(data))
        return operations, events

    def _table_schema(self, name: str) -> TableSchema | None:
        cache = self._caches.get(name)
        if cache is None:
            log.error("the server sent rows of table %r, which the client's schema does not have", name)
            return None
        return cache.schema

    def _apply(
        self, operations: Mapping[str, list[Operation]], events: Mapping[str, list[Any]]
    ) -> list[PendingCallback]:
        pending: list[PendingCallback] = []
        for name, ops in operations.items():
            pending.extend(self._caches[name].apply(ops))
        for name, rows in events.items():
            pending.extend(self._caches[name].events(rows))
        return pending

    def _dispatch(self, ctx: EventContext, pending: list[PendingCallback]) -> None:
        for kind, cache, args in pending:
            for callback in list(cache.callbacks[kind].values()):
                _invoke(callback, ctx, *args)

    # -- the end --------------------------------------------------------------------------------------------------

    def _on_closed(self, error: BaseException | None) -> None:
        was_active = self.is_active
        self.is_active = False
        self._fail_pending(error or ConnectionClosed("the connection was closed"))
        if was_active and self._on_disconnect is not None:
            _invoke(self._on_disconnect, self._context(None if error is None else ErrorEvent(error)), error)
        self._mark_closed()

    def _on_failed_connect(self, error: BaseException) -> None:
        self._fail_pending(error)
        if self._on_connect_error is not None:
            _invoke(self._on_connect_error, self._context(ErrorEvent(error)), error)
        else:  # nobody handles it: run() raises it, rather than returning as if the session had ended
            log.error("connection to %s failed: %s", self.config.database, error)
            self._unhandled_connect_error = (
                error if isinstance(error, ConnectError) else ConnectError(f"cannot connect: {error}")
            )
        self._mark_closed()

    def _fail_pending(self, error: BaseException) -> None:
        closed = error if isinstance(error, SpacetimeError) else ConnectionClosed(str(error))
        for _, _, call in self._calls.values():
            call._complete(error=closed)
        for _, query in self._queries.values():
            query._complete(error=closed)
        for _, procedure in self._procedure_calls.values():
            procedure._complete(error=closed)
        self._calls.clear()
        self._queries.clear()
        self._procedure_calls.clear()

    def _mark_closed(self) -> None:
        self._closed.set()
        if self._async_closed is not None:
            self._async_closed.set()


_HANDLERS: dict[int, Callable[[DbConnection, Any], None]] = {
    v2.INITIAL_CONNECTION: DbConnection._on_initial_connection,
    v2.SUBSCRIBE_APPLIED: DbConnection._on_subscribe_applied,
    v2.UNSUBSCRIBE_APPLIED: DbConnection._on_unsubscribe_applied,
    v2.SUBSCRIPTION_ERROR: DbConnection._on_subscription_error,
    v2.TRANSACTION_UPDATE_TAG: DbConnection._on_transaction_update,
    v2.ONE_OFF_QUERY_RESULT: DbConnection._on_one_off_result,
    v2.REDUCER_RESULT: DbConnection._on_reducer_result,
    v2.PROCEDURE_RESULT: DbConnection._on_procedure_result,
}
_STRING = codec(STRING)


def _error_text(payload: bytes) -> str:
    """A reducer's error value: the BSATN of a string for today's modules."""
    try:
        return _STRING.decode(payload)  # type: ignore[no-any-return]  # the string codec decodes to a str
    except DecodeError:
        return f"<undecodable error value {bytes(payload).hex()}>"


def _invoke(callback: Callable[..., Any], *args: Any) -> None:
    """Run an application callback; its exception is logged, not allowed to stop message processing."""
    try:
        callback(*args)
    except Exception:
        log.exception("a callback (%s) raised", getattr(callback, "__qualname__", callback))


__all__ = [
    "BTreeIndex",
    "ConnectError",
    "DbConnection",
    "DbConnectionBuilder",
    "Pending",
    "ReducerCall",
    "RemoteProcedures",
    "RemoteReducers",
    "RemoteTables",
    "SubscriptionBuilder",
    "SubscriptionHandle",
    "TableHandle",
    "UniqueIndex",
]
