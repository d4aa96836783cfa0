"""Procedures: module functions that run outside any transaction, on threads of their own.

A procedure may wait (on HTTP, on its turn for a transaction), so it never runs on the host thread, which would
stop every reducer of the database meanwhile. A few procedure threads are started with the host's threads
(before the worker forbids new ones); each has its own ``CallClock`` and its own lane of the deadline page, so
a procedure that overruns its budget is stopped (and, stuck in C code, killed with its worker) like a reducer.
Its budget counts its own running time only: waiting for an HTTP answer or for its transaction's turn pauses
the clock.

``ctx.with_tx(fn)`` queues a job on the host thread, which runs ``fn`` in a transaction of its own (through a
runtime whose table handles only that thread can use) and commits or rolls back as a reducer call would; the
procedure thread waits for it. ``ctx.http`` hands each request to ``send_http`` (the worker passes it to the
server, the only process that may open sockets) and waits for ``http_answer``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from spacetimedb.commitlog import TxInputs
from spacetimedb.module import (
    AuthCtx,
    HttpClient,
    HttpError,
    HttpRequest,
    HttpResponse,
    ModuleRuntime,
    NoSuchReducerError,
    ProcedureCall,
    ProcedureContext,
    ReducerArgsError,
    ReducerContext,
    ThreadBoundTxSlot,
)
from spacetimedb.module import log as module_log_api
from spacetimedb.module.handlers import (
    NO_SUCH_ROUTE,
    HandlerContext,
    Request,
    Response,
    checked_response,
    header_map,
)
from spacetimedb.module_log import make_record
from spacetimedb.protocol.messages import CallStatus
from spacetimedb.protocol.seam import MAX_HANDLER_BODY
from spacetimedb.sats import ConnectionId, Identity, Timestamp

from .module_host import ModuleHost, module_error_text, out_of_budget_message
from .watchdog import CallClock, ReducerTimeout, register, unregister

log = logging.getLogger(__name__)

PROCEDURE_THREADS = 4
# procedure calls that may wait for a thread; past it a call is refused at once (a client cannot make its
# database's worker hold an unbounded queue)
MAX_WAITING_CALLS = 1024
# how long past a request's own timeout a procedure waits for the server's answer before giving up on it
HTTP_ANSWER_MARGIN_SECONDS = 5.0
_TOO_MANY_WAITING = f"too many procedure calls are waiting ({MAX_WAITING_CALLS}); try again later"


class TransactionAborted(RuntimeError):
    """A ``with_tx`` body could not commit (it ran out of time, or the database may not write)."""


@dataclass(slots=True)
class ProcedureOutcome:
    status: CallStatus  # COMMITTED: it returned
    message: str | None
    timestamp: Timestamp
    duration_micros: int = 0
    call: ProcedureCall | None = None
    value: Any = None  # the canonical return value

    @property
    def ok(self) -> bool:
        return self.status == CallStatus.COMMITTED

    def value_bsatn(self) -> bytes:
        assert self.call is not None
        return self.call.encode_return(self.value)

    def value_json(self) -> Any:
        assert self.call is not None
        return self.call.return_to_json(self.value)

    def value_json_untyped(self) -> Any:
        assert self.call is not None
        return self.call.return_to_json_untyped(self.value)


@dataclass(slots=True)
class ProcedureRequest:
    name: str
    args: Any  # BSATN bytes, or parsed JSON when ``json_args``
    json_args: bool
    sender: Identity
    connection_id: ConnectionId | None
    auth: AuthCtx
    done: Callable[[ProcedureOutcome], None]


@dataclass(slots=True)
class HandlerOutcome:
    """An HTTP handler's answer (``found`` false: no route serves the request, the body says so)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    found: bool = True


@dataclass(slots=True)
class HandlerRequest:
    """A call of the HTTP handler ``name`` (its route already matched). A handler has no caller: the
    transactions it opens are the database's own (its identity, no connection, internal credentials)."""

    name: str
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    sender: Identity
    done: Callable[[HandlerOutcome], None]
    connection_id: ConnectionId | None = None
    auth: AuthCtx = field(default_factory=AuthCtx.internal)


SendHttp = Callable[[int, HttpRequest], None]
C = TypeVar("C")
R = TypeVar("R")


class _PausableClock:
    """A procedure thread's clock: the budget counts running time only."""

    def __init__(self, clock: CallClock, budget_seconds: float, what: str) -> None:
        self.clock = clock
        self.what = what
        self.remaining_ns = int(budget_seconds * 1e9)
        self.budget_seconds = budget_seconds

    def resume(self) -> None:
        self.clock.arm(max(self.remaining_ns, 0) / 1e9, self.what)

    def pause(self) -> None:
        deadline = self.clock.deadline
        self.clock.disarm()
        if deadline:
            self.remaining_ns = deadline - time.monotonic_ns()


class HeldTx:
    """A transaction the host thread began for a procedure thread (``ProcedureContext.hold_tx``): ``tx`` and
    ``timestamp`` once ``ready``; ``commit()`` or ``abort()`` ends it (each waits for the host thread)."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.tx: Any = None
        self.timestamp = Timestamp(0)
        self.ready: Future[None] = Future()
        self.decision: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.outcome: Future[None] = Future()

    def commit(self) -> None:
        """Commit; raises ``TransactionAborted`` if it could not."""
        self.decision.put(True)
        self.outcome.result()

    def abort(self) -> None:
        self.decision.put(False)
        self.outcome.result()


class ProcedureRunner:
    """The procedure threads of one host, and the HTTP requests they wait for."""

    def __init__(
        self,
        host: ModuleHost,
        send_http: SendHttp,
        clocks: list[CallClock],
    ) -> None:
        self.host = host
        self.send_http = send_http
        self._clocks = clocks
        self._jobs: queue.SimpleQueue[ProcedureRequest | HandlerRequest | None] = queue.SimpleQueue()
        self.max_response_bytes = MAX_HANDLER_BODY
        self._http_waiting: dict[int, Future[HttpResponse]] = {}
        self._http_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._serve, args=(clock,), name=f"procedure-{i}", daemon=True)
            for i, clock in enumerate(clocks)
        ]
        self._tx_runtime: ModuleRuntime | None = None
        self._tx_runtime_of: Any = None

    def start(self) -> None:
        for clock in self._clocks:
            register(clock)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for clock in self._clocks:
            unregister(clock)
        for _ in self._threads:
            self._jobs.put(None)

    def call(self, request: ProcedureRequest) -> None:
        """Queue a procedure call (from any thread); ``request.done`` gets its outcome on a procedure thread (or
        at once, on this one, when too many calls wait)."""
        if self._too_many_waiting():
            request.done(ProcedureOutcome(CallStatus.INTERNAL_ERROR, _TOO_MANY_WAITING, Timestamp.now()))
            return
        self._jobs.put(request)

    def call_handler(self, request: HandlerRequest) -> None:
        """Queue an HTTP handler's call, as ``call`` queues a procedure's (it shares the procedure threads)."""
        if self._too_many_waiting():
            request.done(HandlerOutcome(503, (), _TOO_MANY_WAITING.encode()))
            return
        self._jobs.put(request)

    def _too_many_waiting(self) -> bool:
        return self._jobs.qsize() >= MAX_WAITING_CALLS

    # -- the procedure threads ---------------------------------------------------------------------------------

    def _serve(self, clock: CallClock) -> None:
        while True:
            request = self._jobs.get()
            if request is None:
                return
            # what the procedure logs goes to the database's module log (without a sink: stderr, which a
            # worker process discards), recorded as the procedure's
            previous_sink = module_log_api.set_sink(self._log_sink(request.name))
            try:
                if isinstance(request, HandlerRequest):
                    answer: Callable[[], None] = functools.partial(
                        request.done, self._run_handler(request, clock)
                    )
                else:
                    answer = functools.partial(request.done, self._run(request, clock))
            finally:
                module_log_api.set_sink(previous_sink)
            try:
                answer()
            except Exception:
                log.exception("a procedure's completion failed")

    def _log_sink(self, procedure: str) -> module_log_api.LogSink:
        module_log = self.host.module_log

        def sink(level: str, message: str, filename: str | None, line: int | None) -> None:
            module_log.write(
                make_record(level, message, function=procedure, filename=filename, line_number=line)
            )

        return sink

    def _run(self, request: ProcedureRequest, clock: CallClock) -> ProcedureOutcome:
        started = time.perf_counter()
        timestamp = Timestamp.now()
        host = self.host
        try:
            call = host.runtime.procedure_call(request.name)
            args = call.decode_json(request.args) if request.json_args else call.decode_bsatn(request.args)
        except (NoSuchReducerError, ReducerArgsError) as exc:
            return ProcedureOutcome(CallStatus.INTERNAL_ERROR, str(exc), timestamp)
        connection_id = (
            request.connection_id if request.connection_id and request.connection_id.value else None
        )

        def context(timer: _PausableClock) -> ProcedureContext:
            return ProcedureContext(
                request.sender,
                connection_id,
                timestamp,
                host.database_identity,
                request.auth,
                HttpClient(lambda http_request: self._fetch(http_request, timer)),
                lambda fn: self._with_tx(fn, request, call.name, timer),
                lambda: self._hold_tx(request, call.name, timer),
            )

        status, message, value = self._invoke(
            request.name,
            clock,
            context,
            lambda ctx: call.canonical_return(call.call(ctx, args)),  # type: ignore[arg-type]  # a procedure's call takes a ProcedureContext
        )
        micros = int((time.perf_counter() - started) * 1e6)
        return ProcedureOutcome(status, message, timestamp, micros, call, value)

    def _run_handler(self, request: HandlerRequest, clock: CallClock) -> HandlerOutcome:
        """An HTTP handler's call: its response, or a 500 saying why there is none (also in the module log)."""
        host = self.host
        handler = host.loaded.module_def.http_handlers.get(request.name)
        if handler is None:  # the module was updated since the route was matched
            return HandlerOutcome(404, (), NO_SUCH_ROUTE.encode(), found=False)
        timestamp = Timestamp.now()
        http_request = Request(request.method, request.uri, header_map(request.headers), request.body)

        def context(timer: _PausableClock) -> HandlerContext:
            return HandlerContext(
                timestamp,
                host.database_identity,
                HttpClient(lambda outbound: self._fetch(outbound, timer)),
                lambda fn: self._with_tx(fn, request, request.name, timer),
            )

        def respond(ctx: HandlerContext) -> Response:
            return checked_response(request.name, handler.func(ctx, http_request), self.max_response_bytes)

        status, message, response = self._invoke(request.name, clock, context, respond)
        if status != CallStatus.COMMITTED or response is None:
            text = f"HTTP handler `{request.name}` failed: {message or status}"
            return HandlerOutcome(500, (("content-type", "text/plain; charset=utf-8"),), text.encode())
        return HandlerOutcome(response.status, response.headers, response.body)

    def _invoke(
        self,
        name: str,
        clock: CallClock,
        context: Callable[[_PausableClock], C],
        body: Callable[[C], R],
    ) -> tuple[CallStatus, str | None, R | None]:
        """Run ``body(context(timer))`` on this procedure thread under the reducer budget (counting its running
        time only): (COMMITTED, None, what it returned), or the failure, which goes to the module log."""
        host = self.host
        budget = host.options.reducer_budget_seconds
        timer = _PausableClock(clock, budget, name)
        ctx = context(timer)
        timer.resume()
        try:
            try:
                return CallStatus.COMMITTED, None, body(ctx)
            finally:
                timer.pause()
        except ReducerTimeout:
            message = out_of_budget_message(name, budget)
            host.log_error(message, name, None)
            return CallStatus.OUT_OF_BUDGET, message, None
        except BaseException as exc:
            message = module_error_text(exc)
            host.log_error(message, name, exc)
            return CallStatus.FAILED, message, None

    # -- ctx.http -----------------------------------------------------------------------------------------------

    def _fetch(self, request: HttpRequest, timer: _PausableClock) -> HttpResponse:
        fetch = next(self._http_ids)
        future: Future[HttpResponse] = Future()
        with self._lock:
            self._http_waiting[fetch] = future
        timer.pause()  # waiting on the network is not the procedure's running time
        try:
            self.send_http(fetch, request)
            wait = (request.timeout or 30.0) + HTTP_ANSWER_MARGIN_SECONDS
            try:
                return future.result(wait)
            except FutureTimeout:
                raise HttpError(f"no answer to {request.method} {request.url} within {wait:g}s") from None
        finally:
            with self._lock:
                self._http_waiting.pop(fetch, None)
            timer.resume()

    def http_answer(self, fetch: int, response: HttpResponse | None, error: str | None) -> None:
        """The server's answer to request ``fetch`` (from the worker's main thread)."""
        with self._lock:
            future = self._http_waiting.get(fetch)
        if future is None or future.done():
            return  # it gave up waiting
        if error is not None:
            future.set_exception(HttpError(error))
        else:
            assert response is not None
            future.set_result(response)

    # -- ctx.with_tx --------------------------------------------------------------------------------------------

    def _with_tx(
        self,
        fn: Callable[[ReducerContext[Any]], Any],
        request: ProcedureRequest | HandlerRequest,
        name: str,
        timer: _PausableClock,
    ) -> Any:
        future: Future[Any] = Future()
        timer.pause()  # its turn on the host thread, and its body there, count on the host's clock
        try:
            self.host.submit(lambda: self._tx_job(fn, request, name, future))
            return future.result()
        finally:
            timer.resume()

    # -- a transaction held open for a foreign module's procedure ------------------------------------------------

    def _hold_tx(self, request: ProcedureRequest, name: str, timer: _PausableClock) -> HeldTx:
        """Begin a transaction on the host thread and hand it to this procedure thread, which drives it and ends
        it with ``commit()`` or ``abort()``; the host thread runs nothing else meanwhile (as a ``with_tx`` body
        would), for at most the procedure's budget."""
        held = HeldTx(timer.budget_seconds + self.host.options.hard_grace_seconds)
        timer.pause()  # waiting for the host thread is not the procedure's running time
        try:
            self.host.submit(lambda: self._held_tx_job(held, request, name))
            held.ready.result()
        finally:
            timer.resume()
        return held

    def _held_tx_job(self, held: HeldTx, request: ProcedureRequest, name: str) -> None:
        """On the host thread: begin, wait for the procedure's decision, then commit or roll back."""
        host = self.host
        try:
            held.timestamp = Timestamp.now()
            held.tx = host.db.begin_mut_tx()
        except BaseException as exc:
            held.ready.set_exception(TransactionAborted(f"the database failed: {exc}"))
            raise
        held.ready.set_result(None)
        try:
            commit = held.decision.get(timeout=held.wait_seconds)
        except queue.Empty:
            commit = None
        try:
            if commit is None:
                host.db.rollback(held.tx)
                held.outcome.set_exception(
                    TransactionAborted(f"`{name}` held its transaction past its budget")
                )
            elif not commit:
                host.db.rollback(held.tx)
                held.outcome.set_result(None)
            elif self._commit_procedure_tx(held.tx, request, name, held.timestamp, held.outcome):
                held.outcome.set_result(None)
        except BaseException as exc:
            if not held.outcome.done():
                held.outcome.set_exception(TransactionAborted(f"the database failed: {exc}"))
            raise

    def _commit_procedure_tx(
        self,
        tx: Any,
        request: ProcedureRequest | HandlerRequest,
        name: str,
        timestamp: Timestamp,
        result: Future[Any],
    ) -> bool:
        """Commit a procedure's transaction as a reducer call would (refused while the disk is full); whether it
        committed (``result`` gets the exception when it did not)."""
        host = self.host
        if host.read_only is not None and tx.has_changes():
            host.db.rollback(tx)
            result.set_exception(TransactionAborted(f"{CallStatus.NO_SPACE}: {host.read_only}"))
            return False
        caller = request.sender.to_le_bytes()
        connection = (request.connection_id or ConnectionId(0)).to_le_bytes()
        host.commit(tx, TxInputs(name, caller, connection, timestamp.micros, b""), reducer=name)
        return True

    def _runtime_for_tx(self) -> ModuleRuntime:
        """A runtime over the current module whose handles only the host thread may use (rebuilt after an
        update)."""
        loaded = self.host.loaded
        if self._tx_runtime is None or self._tx_runtime_of is not loaded:
            runtime = ModuleRuntime(loaded, ThreadBoundTxSlot())
            with self.host.db.read_tx() as tx:
                runtime.bind(tx)
            self._tx_runtime, self._tx_runtime_of = runtime, loaded
        return self._tx_runtime

    def _tx_job(
        self,
        fn: Callable[[ReducerContext[Any]], Any],
        request: ProcedureRequest | HandlerRequest,
        name: str,
        future: Future[Any],
    ) -> None:
        """On the host thread: ``fn`` in a transaction; its result or exception goes to ``future``."""
        host = self.host
        try:
            runtime = self._runtime_for_tx()
            timestamp = Timestamp.now()
            tx = host.db.begin_mut_tx()
            ctx = runtime.begin_call(
                tx, request.sender, request.connection_id, timestamp, host.database_identity, request.auth
            )
            outcome: list[Any] = []

            def body() -> None:
                try:
                    outcome.append(fn(ctx))
                except Exception as exc:
                    outcome.append(exc)
                    raise

            try:
                status, message, _ = host.run_user_code(name, body)
            except BaseException:
                host.db.rollback(tx)
                raise
            finally:
                runtime.end_call()
            if status != CallStatus.COMMITTED:
                host.db.rollback(tx)
                failure = (
                    outcome[0]
                    if status == CallStatus.FAILED and outcome
                    else TransactionAborted(message or status)
                )
                future.set_exception(failure)
                return
            if self._commit_procedure_tx(tx, request, name, timestamp, future):
                future.set_result(outcome[0])
        except BaseException as exc:
            if not future.done():
                future.set_exception(TransactionAborted(f"the database failed: {exc}"))
            raise
