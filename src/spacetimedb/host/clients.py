"""The clients of a database, inside its worker: their protocol, their requests, what they are sent.

The server process only moves bytes: it forwards each WebSocket frame of a client as it came, and sends out the
encoded messages the worker delivers. Here each frame is decoded into typed messages and dispatched with one
``match``; every request runs on the host thread in arrival order (so a client's disconnect always comes after
its subscriptions, and leaves none behind). Each result is encoded in the client's protocol and delivered with
the offset of the transaction it reflects, so that the server can hold it back until that offset is durable.
The HTTP API's requests (reducer calls, SQL, schema, logs) are served here too.
"""

from __future__ import annotations

import collections
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from spacetimedb import protocol
from spacetimedb.module import AuthCtx, NoSuchReducerError, ReducerArgsError
from spacetimedb.module.handlers import NO_SUCH_ROUTE, match_route
from spacetimedb.module.rawdef_v10 import raw_v10_json
from spacetimedb.module_log import escape_surrogates
from spacetimedb.protocol import messages as msg
from spacetimedb.protocol import seam, v1json, v2
from spacetimedb.protocol.messages import LEGACY_QUERY_SET, Caller, CallStatus
from spacetimedb.sats import ConnectionId, DecodeError, Identity, ProductType
from spacetimedb.sats.meta import type_to_bsatn
from spacetimedb.sql import SqlError, ast
from spacetimedb.subscription import SubscriptionError, TableRows

from .channel import Outbox
from .database import Database
from .errors import HostFailedError
from .module_host import CallOutcome, TransactionEvent
from .procedures import HandlerOutcome, HandlerRequest, ProcedureOutcome, ProcedureRequest
from .sql_runner import (
    NoSpaceError,
    TypedOutcome,
    describe_sql,
    one_off_rows,
    query_limits,
    run_sql,
    run_sql_typed,
)

_PROTOCOLS = {
    seam.CLIENT_PROTOCOL_V1_JSON: v1json.PROTOCOL_V1_JSON,
    seam.CLIENT_PROTOCOL_V2: v2.PROTOCOL_V2,
    seam.CLIENT_PROTOCOL_V3: v2.PROTOCOL_V3,
}
_CALL_STATUS = {
    CallStatus.COMMITTED: seam.CALL_COMMITTED,
    CallStatus.FAILED: seam.CALL_FAILED,
    CallStatus.OUT_OF_BUDGET: seam.CALL_OUT_OF_BUDGET,
    CallStatus.NO_SPACE: seam.CALL_NO_SPACE,
}
MAX_REMEMBERED_CANCELS = 1024
# (compiled, a ``Final`` global is read from a C static, ``msg.CallReducer`` from two dicts: read per message)
_CALL_REDUCER: Final = msg.CallReducer


@dataclass(slots=True)
class Client:
    client: int  # the server's id of the connection
    protocol: str
    encoder: msg.ServerEncoder
    caller: Caller
    is_owner: bool
    identity: Identity  # the caller's, kept at hand for every call
    connection_id: ConnectionId
    auth: AuthCtx
    decode_frame: Callable[[bytes], list[msg.ClientMessage]]  # of its protocol (``protocol.frame_decoder``)


# a statement's result type as BSATN, for the typed SQL answers: the same few types recur with every query
_type_bytes = functools.lru_cache(maxsize=256)(type_to_bsatn)


class ClientHub:
    """Serves the server's requests for one database; every method runs on the host thread."""

    def __init__(self, database: Database, outbox: Outbox) -> None:
        self.database = database
        self.host = database.host
        self.outbox = outbox
        self.clients: dict[int, Client] = {}
        # connected clients per identity: a view's sender_auth is forgotten with its identity's last connection
        self._connections_of: collections.Counter[Identity] = collections.Counter()
        self.gone: set[int] = set()  # clients that disconnected, whose jobs may still be queued
        self.cancelled: dict[int, None] = {}  # requests nobody waits for (oldest first)
        self._follow_logs = False
        self.host.add_transaction_listener(self._on_transaction)
        database.module_log.follow(self._log_line)

    # -- connections -----------------------------------------------------------------------------------------------

    def connect(self, request: seam.ConnectClient) -> None:
        protocol_name = _PROTOCOLS.get(request.protocol)
        if protocol_name is None:
            self.outbox.send(seam.ClientAccepted(request.client, f"unknown protocol {request.protocol}"))
            return
        caller = Caller(request.identity, request.connection_id)
        auth = AuthCtx(request.claims or None)
        outcome = self.host.connect_now(request.identity, request.connection_id, auth)
        if not outcome.ok:
            self.outbox.send(seam.ClientAccepted(request.client, outcome.message or outcome.status))
            return
        self.host.views.caller_auth[request.identity] = auth
        self._connections_of[request.identity] += 1
        self.clients[request.client] = Client(
            request.client,
            protocol_name,
            protocol.encoder_for(protocol_name),
            caller,
            request.identity == self.host.owner_identity,
            request.identity,
            request.connection_id,
            auth,
            protocol.frame_decoder(protocol_name),
        )
        self.outbox.send(seam.ClientAccepted(request.client, None))

    # -- from the main thread, ahead of the queue --------------------------------------------------------------------

    def client_gone(self, client: int) -> None:
        """The client disconnected: its queued frames are skipped and its read in progress is stopped (its
        ``DisconnectClient`` job cleans up after them)."""
        self.gone.add(client)
        self.host.interrupt(("client", client))

    def cancel(self, request: int) -> None:
        """Nobody waits for ``request`` any more: stop it, or skip it when its turn comes."""
        self.cancelled[request] = None
        while len(self.cancelled) > MAX_REMEMBERED_CANCELS:
            del self.cancelled[next(iter(self.cancelled))]
        self.host.interrupt(("request", request))

    def disconnect(self, request: seam.DisconnectClient) -> None:
        self.gone.discard(request.client)
        client = self.clients.pop(request.client, None)
        if client is None:
            return
        self.host.subscriptions.remove_client(client.client)
        self.host.views.remove_client(client.client)
        self.host.disconnect_now(client.identity, client.connection_id, client.auth)
        # a count, not a scan of every client: a thousand leaving at once would cost a million comparisons
        self._connections_of[client.identity] -= 1
        if not self._connections_of[client.identity]:
            del self._connections_of[client.identity]
            self.host.views.caller_auth.pop(client.identity, None)

    # -- a client's frames -----------------------------------------------------------------------------------------

    def frame(self, request: seam.ClientFrame) -> None:
        try:
            client = self.clients.get(request.client)
            if client is None or request.client in self.gone:
                return  # it disconnected while the frame was queued (still counted done: the server waits for it)
            try:
                decoded = client.decode_frame(request.data)
            except DecodeError as exc:
                self._close(client, msg.close_code_of(exc), f"invalid message: {exc}")
                return
            for message in decoded:
                if type(message) is _CALL_REDUCER:  # by far the most frequent: no dispatch
                    self._call_reducer(client, message)
                else:
                    self._dispatch(client, message)
        finally:
            self.outbox.frame_done(request.client)

    def _dispatch(self, client: Client, message: msg.ClientMessage) -> None:
        match message:
            case msg.CallReducer():
                self._call_reducer(client, message)
            case msg.Subscribe():
                self._subscribe(client, message)
            case msg.Unsubscribe():
                self._unsubscribe(client, message)
            case msg.OneOffQuery():
                self._one_off(client, message)
            case msg.CallProcedure():
                self._call_procedure(client, message)

    def _close(self, client: Client, code: int, reason: str) -> None:
        # a reason may quote the client's input, whose JSON escapes can spell lone surrogates
        self.outbox.send(seam.CloseClient(client.client, code, escape_surrogates(reason)))

    def _call_reducer(self, client: Client, call: msg.CallReducer) -> None:
        outcome = self.host.run_reducer(
            call.reducer,
            call.args,
            call.json_args,
            client.identity,
            client.connection_id,
            client.client,
            client.auth,
        )
        encoder = client.encoder
        if type(encoder) is v2.V2Encoder:  # (v2 and v3 clients: compiled, a direct call)
            payload = encoder.reducer_result(call.request_id, call.reducer, call.args, outcome, client.caller)
        else:
            payload = encoder.reducer_result(call.request_id, call.reducer, call.args, outcome, client.caller)
        self.outbox.deliver(client.client, outcome.offset if outcome.ok else None, payload)

    def _call_procedure(self, client: Client, call: msg.CallProcedure) -> None:
        """Hand the call to a procedure thread; its result reaches the client through the host thread, in order
        with everything else the client is sent."""

        def done(outcome: ProcedureOutcome) -> None:
            self._on_host_thread(lambda: self._procedure_done(client, call.request_id, outcome))

        request = ProcedureRequest(
            call.procedure,
            call.args,
            call.json_args,
            client.identity,
            client.connection_id,
            client.auth,
            done,
        )
        self.database.procedures.call(request)

    def _procedure_done(self, client: Client, request_id: int, outcome: ProcedureOutcome) -> None:
        if self.clients.get(client.client) is client:
            try:
                payload = client.encoder.procedure_result(request_id, outcome)
            except Exception as exc:  # a return value the protocol cannot carry
                payload = client.encoder.procedure_error(
                    request_id, f"the return value cannot be sent: {exc}"
                )
            self.outbox.deliver(client.client, None, payload)

    def _on_host_thread(self, job: Callable[[], None]) -> None:
        try:
            self.host.submit(job)
        except HostFailedError:
            pass  # the worker is going down: its clients are closed with the reason

    def _subscribe(self, client: Client, request: msg.Subscribe) -> None:
        manager = self.host.subscriptions
        db = self.database.db
        views = self.host.views
        if request.replaces_legacy and (
            LEGACY_QUERY_SET in manager.subscriptions(client.client)
            or views.has(client.client, LEGACY_QUERY_SET)
        ):
            views.unsubscribe_set(manager, client.client, LEGACY_QUERY_SET, None)
        encoder = client.encoder

        def initial_rows() -> list[TableRows]:
            with db.read_tx() as tx:
                return views.subscribe_set(
                    manager,
                    client.client,
                    request.query_set_id,
                    list(request.queries),
                    client.identity,
                    client.is_owner,
                    tx,
                    query_limits(self.host),
                )

        try:
            tables = self.host.run_query(
                "the subscription's initial rows", initial_rows, ("client", client.client)
            )
        except (SubscriptionError, SqlError) as exc:
            payload = encoder.subscription_error(request.request_id, request.query_set_id, str(exc))
            self.outbox.deliver(client.client, None, payload)
            return
        payload = encoder.subscribe_applied(request.request_id, request.query_set_id, tables, request.multi)
        self.outbox.deliver(client.client, db.next_offset - 1, payload)

    def _unsubscribe(self, client: Client, request: msg.Unsubscribe) -> None:
        manager = self.host.subscriptions

        def dropped_rows() -> list[TableRows] | None:
            with self.database.db.read_tx() as tx:
                return self.host.views.unsubscribe_set(
                    manager, client.client, request.query_set_id, tx if request.send_dropped_rows else None
                )

        try:
            tables = self.host.run_query(
                "the unsubscribe's dropped rows", dropped_rows, ("client", client.client)
            )
        except (SubscriptionError, SqlError) as exc:
            payload = client.encoder.subscription_error(request.request_id, request.query_set_id, str(exc))
        else:
            payload = client.encoder.unsubscribe_applied(request.request_id, request.query_set_id, tables)
        self.outbox.deliver(client.client, None, payload)

    def _one_off(self, client: Client, request: msg.OneOffQuery) -> None:
        try:
            tables = self.host.run_query(
                "the one-off query",
                lambda: one_off_rows(self.host, request.query, client.identity, client.is_owner),
                ("client", client.client),
            )
        except Exception as exc:
            payload = client.encoder.one_off_result(request.request_id, None, str(exc))
        else:
            payload = client.encoder.one_off_result(request.request_id, tables, None)
        self.outbox.deliver(client.client, None, payload)

    # -- transactions ------------------------------------------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        clients = self.clients
        deliver = self.outbox.deliver
        for client_id, updates in event.updates.updates.items():
            if client_id == event.caller_client:
                continue  # the caller hears about its own transaction in its reducer result
            client = clients.get(client_id)
            if client is not None:
                deliver(client_id, event.offset, client.encoder.transaction_update(updates))
        for client_id, errors in event.updates.errors.items():
            client = clients.get(client_id)
            if client is not None:
                for query_set_id, message in errors:
                    deliver(
                        client_id,
                        event.offset,
                        client.encoder.subscription_error(None, query_set_id, message),
                    )
        if event.disconnect_all:
            for client in clients.values():
                self._close(client, 1012, "the module was updated; reconnect")

    # -- the HTTP API ------------------------------------------------------------------------------------------------

    def call_http(self, request: seam.CallReducerHttp) -> None:
        """A reducer or procedure call through ``POST /call``: its own short-lived connection, as SpacetimeDB
        does it."""
        started = time.perf_counter()
        auth = AuthCtx(request.claims or None)
        status, message, procedure = self._check_http_call(request)
        if status is not None:
            self.outbox.send(seam.CallDone(request.request, status, message, None, 0, None))
            return
        args = json.loads(request.args_json)
        connection, refusal = self._http_connection(request.caller, auth)
        if refusal is not None:
            self.outbox.send(seam.CallDone(request.request, seam.CALL_REFUSED, refusal, None, 0, None))
            return
        if procedure:
            self._call_procedure_http(request, args, connection, auth, started)
            return
        try:
            outcome: CallOutcome = self.host.run_reducer(
                request.reducer, args, True, request.caller, connection, None, auth
            )
        finally:
            self.host.disconnect_now(request.caller, connection, auth)
        status = _CALL_STATUS.get(outcome.status, seam.CALL_INTERNAL_ERROR)
        micros = int((time.perf_counter() - started) * 1e6)
        offset = outcome.offset if outcome.ok else None
        self.outbox.send(seam.CallDone(request.request, status, outcome.message or "", offset, micros, None))

    def _http_connection(self, caller: Identity, auth: AuthCtx) -> tuple[ConnectionId, str | None]:
        """The short-lived connection an HTTP request runs in, as SpacetimeDB makes one: its id, and why the
        module's client_connected refused it (None: connected; the caller disconnects it when done)."""
        connection = ConnectionId.random()
        connected = self.host.connect_now(caller, connection, auth)
        return connection, None if connected.ok else (connected.message or connected.status)

    def _call_procedure_http(
        self,
        request: seam.CallReducerHttp,
        args: object,
        connection: ConnectionId,
        auth: AuthCtx,
        started: float,
    ) -> None:
        def answer(outcome: ProcedureOutcome) -> None:
            self.host.disconnect_now(request.caller, connection, auth)
            micros = int((time.perf_counter() - started) * 1e6)
            if outcome.status == CallStatus.COMMITTED:
                try:
                    # as upstream's POST /call answers (smoketest cluster/call.rs): products as arrays
                    value = json.dumps(outcome.value_json_untyped())
                except Exception as exc:
                    self.outbox.send(
                        seam.CallDone(request.request, seam.CALL_INTERNAL_ERROR, str(exc), None, micros, None)
                    )
                    return
                self.outbox.send(seam.CallDone(request.request, seam.CALL_COMMITTED, "", None, micros, value))
                return
            status = _CALL_STATUS.get(outcome.status, seam.CALL_INTERNAL_ERROR)
            message = outcome.message or outcome.status
            self.outbox.send(seam.CallDone(request.request, status, message, None, micros, None))

        procedure_request = ProcedureRequest(
            request.reducer,
            args,
            True,
            request.caller,
            connection,
            auth,
            lambda outcome: self._on_host_thread(lambda: answer(outcome)),
        )
        self.database.procedures.call(procedure_request)

    def call_handler(self, request: seam.CallHttpHandler) -> None:
        """A request to one of the module's HTTP routes: its handler runs on a procedure thread."""
        if len(request.header_names) != len(request.header_values):
            raise seam.SeamViolation("an HTTP request whose header names and values do not pair up")
        if self._forget_cancelled(request.request):
            return  # its client hung up before its turn: the handler does not run for nobody
        route = match_route(self.host.loaded.module_def.http_routes, request.method, request.path)
        if route is None:
            self.outbox.send(seam.HandlerDone(request.request, False, 404, (), (), NO_SUCH_ROUTE.encode()))
            return

        def answer(outcome: HandlerOutcome) -> None:
            names = tuple(name for name, _ in outcome.headers)
            values = tuple(value for _, value in outcome.headers)
            done = seam.HandlerDone(
                request.request, outcome.found, outcome.status, names, values, outcome.body
            )
            self._on_host_thread(lambda: self.outbox.send(done))

        headers = tuple(zip(request.header_names, request.header_values, strict=True))
        handler_request = HandlerRequest(
            route.handler,
            request.method,
            request.uri,
            headers,
            request.body,
            self.database.identity,
            answer,
        )
        self.database.procedures.call_handler(handler_request)

    def _check_http_call(self, request: seam.CallReducerHttp) -> tuple[int | None, str, bool]:
        """(refusal status or None, its message, whether the name is a procedure's)."""
        runtime = self.host.runtime
        name = request.reducer
        procedure = name in self.host.loaded.module_def.procedures
        try:
            call = runtime.procedure_call(name) if procedure else runtime.reducer_call(name)
        except NoSuchReducerError:
            return seam.CALL_NO_SUCH_REDUCER, f"no such reducer or procedure: `{name}`", False
        if call.reducer.lifecycle is not None:
            return seam.CALL_LIFECYCLE, f"lifecycle reducer `{name}` cannot be called directly", False
        try:
            call.decode_json(json.loads(request.args_json))
        except ValueError as exc:  # ReducerArgsError is one too
            message = str(exc) if isinstance(exc, ReducerArgsError) else f"invalid JSON arguments: {exc}"
            return seam.CALL_BAD_ARGUMENTS, message, procedure
        except RecursionError:
            return seam.CALL_BAD_ARGUMENTS, "invalid JSON arguments: nested too deeply", procedure
        return None, "", procedure

    def sql(self, request: seam.RunSql) -> None:
        if self._forget_cancelled(request.request):
            return
        is_owner = request.caller == self.host.owner_identity
        # as upstream (since its PR #4563): the query runs inside a connection of the caller, so a module whose
        # client_connected refuses someone refuses their SQL too
        auth = AuthCtx(request.claims or None)
        connection, refusal = self._http_connection(request.caller, auth)
        if refusal is not None:
            self.outbox.send(seam.SqlDone(request.request, False, refusal, None, False, True))
            return
        try:
            body, offset = self.host.run_query(
                "the SQL query",
                lambda: run_sql(self.host, request.sql, request.caller, is_owner),
                ("request", request.request),
            )
        except SqlError as exc:
            no_space = isinstance(exc, NoSpaceError)
            self.outbox.send(seam.SqlDone(request.request, False, str(exc), None, no_space, False))
            return
        finally:
            self.host.disconnect_now(request.caller, connection, auth)
        self.outbox.send(seam.SqlDone(request.request, True, body, offset, False, False))

    def sql_typed(self, request: seam.RunSqlTyped) -> None:
        """A script for the PostgreSQL front end: the same rules, limits and messages as ``sql``, typed rows."""
        if self._forget_cancelled(request.request):
            return
        is_owner = request.caller == self.host.owner_identity
        params = [ast.Literal(param.kind, param.text) for param in request.params]
        try:
            outcome = self.host.run_query(
                "the SQL query",
                lambda: run_sql_typed(self.host, request.sql, request.caller, is_owner, params),
                ("request", request.request),
            )
        except SqlError as exc:
            outcome = TypedOutcome(error=exc)
        results = tuple(
            seam.StatementRows(
                result.command,
                _type_bytes(result.schema),
                tuple(result.rows),
                result.stats.rows_inserted,
                result.stats.rows_deleted,
                result.stats.rows_updated,
                result.micros,
            )
            for result in outcome.results
        )
        error = outcome.error
        self.outbox.send(
            seam.SqlRows(
                request.request,
                results,
                None if error is None else str(error),
                "" if error is None else type(error).__name__,
                outcome.offset,
                isinstance(error, NoSpaceError),
            )
        )

    def describe_sql(self, request: seam.DescribeSql) -> None:
        if self._forget_cancelled(request.request):
            return
        is_owner = request.caller == self.host.owner_identity
        try:
            param_types, row_type = self.host.run_query(
                "describing the SQL query",
                lambda: describe_sql(self.host, request.sql, request.caller, is_owner),
                ("request", request.request),
            )
        except SqlError as exc:
            empty = type_to_bsatn(ProductType.of())
            self.outbox.send(seam.SqlDescribed(request.request, empty, None, str(exc), type(exc).__name__))
            return
        params = type_to_bsatn(ProductType.of(*((None, ty) for ty in param_types)))
        row = None if row_type is None else type_to_bsatn(row_type)
        self.outbox.send(seam.SqlDescribed(request.request, params, row, None, ""))

    def _forget_cancelled(self, request: int) -> bool:
        """Whether ``request`` was cancelled before its turn (nobody reads its answer)."""
        if request in self.cancelled:
            del self.cancelled[request]
            return True
        return False

    def schema(self, request: seam.GetSchema) -> None:
        module_def = self.host.loaded.module_def
        if request.version == 10:
            raw = json.dumps(raw_v10_json(module_def))
        else:
            raw = json.dumps(module_def.raw_v9_json(request.event_flags))
        self.outbox.send(seam.SchemaAnswer(request.request, raw))

    def tail_log(self, request: seam.TailLog) -> None:
        lines = tuple(self.database.module_log.tail(request.lines))
        self.outbox.send(seam.LogAnswer(request.request, lines))

    def follow_log(self, request: seam.FollowLog) -> None:
        self._follow_logs = request.enabled

    def _log_line(self, line: str) -> None:
        if not self._follow_logs:
            return
        if threading.get_ident() == self.host.thread_id:
            self.outbox.send(seam.LogLines((line,)))
        else:  # a line the worker itself wrote from another thread
            self.outbox.channel.send(seam.LogLines((line,)))

    def stats(self, request: seam.GetStats) -> None:
        subscribed, query_sets = self.host.subscriptions.counts()
        stats = seam.DatabaseStats(
            len(self.clients),
            subscribed,
            query_sets,
            self.host.subscriptions.query_count,
            self.database.db.next_offset,
        )
        self.outbox.send(seam.StatsAnswer(request.request, stats))

    def close_all(self, code: int, reason: str) -> None:
        for client in self.clients.values():
            self._close(client, code, reason)
