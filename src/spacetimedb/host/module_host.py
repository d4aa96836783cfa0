"""The module host of one database: a thread that runs its reducers one at a time, in arrival order.

Every write to the database happens on this thread (reducer calls, lifecycle reducers, scheduled reducers, SQL
DML, module updates), as jobs taken from one queue in batches. After each commit the host evaluates the
subscriptions against the transaction's changes and hands a ``TransactionEvent`` to its listeners (the server),
then answers the job's ``reply`` callback, both on this thread and in commit order.

Errors are of two kinds. A reducer that raises (or runs out of time) is an ordinary outcome: its transaction
is rolled back and the caller gets the message. Anything else that goes wrong in the host's own machinery
(a failed commit or fsync, a broken invariant, an injected fault) is a *panic*: the host stops taking work,
fails what is queued, stops its scheduler, closes its database (releasing the directory lock) and tells its
owner, which forgets it — the next access launches a fresh host that replays the database from disk.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from spacetimedb.commitlog import TxInputs
from spacetimedb.datastore import (
    ST_CLIENT_ID,
    ST_CONNECTION_CREDENTIALS_ID,
    ST_MODULE_ID,
    MutTx,
    ReadTx,
    TableChanges,
    TableSchema,
    TxData,
)
from spacetimedb.db import RelationalDB
from spacetimedb.module import (
    INTERNAL_AUTH,
    AuthCtx,
    LoadedModule,
    MigrationError,
    MigrationPlan,
    ModuleError,
    ModuleRuntime,
    NoSuchReducerError,
    ReducerArgsError,
    ReducerFunction,
    apply_migration,
    begin_reducer_call,
    plan_migration,
)
from spacetimedb.module import log as module_log_api
from spacetimedb.module.context import set_immediate_scheduler
from spacetimedb.module.slots import NO_TX
from spacetimedb.module_log import ModuleLog, escape_surrogates, make_record
from spacetimedb.protocol.deadline import DeadlineSlot
from spacetimedb.protocol.messages import CallStatus
from spacetimedb.sats import ConnectionId, Identity, ScheduleAt, Timestamp
from spacetimedb.sql import SqlTimeoutError
from spacetimedb.subscription import SubscriptionManager, TransactionUpdates

from .clock import CallClock
from .errors import CallCancelled, HostFailedError, InjectedFault, ReducerTimeout
from .metrics import ReducerMetrics
from .scheduler import DueCall, Scheduler, next_interval_due, now_micros
from .views import LiveViews
from .watchdog import register, unregister

log = logging.getLogger(__name__)
T = TypeVar("T")
_perf_counter: Final = time.perf_counter
JOBS_PER_BATCH: Final = 16  # at most this many jobs between two ``batch_done`` (the batch listeners' flush)
# and at most about this long: a job may be a client frame of 40 calls, and a batch of 16 of them held the
# replies for 10 ms, and the GIL from the durability thread that publishes the durable offset (keynote
# pipelined, interleaved A/B: +5% at alpha 0, +8% at 1.5; 0.3 ms lost 8% at 1.5, 3 ms gained 2-3%)
BATCH_SECONDS: Final = 0.001
_time_ns: Final = time.time_ns
_new_object: Final = object.__new__
# (compiled, a ``Final`` global is read from a C static, any other from the module's dict: per-call reads)
_TIMESTAMP: Final = Timestamp
_INTERNAL_AUTH: Final = INTERNAL_AUTH
_NO_TX: Final = NO_TX


def _timestamp_of(micros: int) -> Timestamp:
    """``Timestamp(micros)`` of a clock's reading, made as ``Timestamp.now`` makes one: a value of the clock fits,
    so no range check, and (compiled) no Python frame, which would cost more than the work."""
    stamp: Timestamp = _new_object(_TIMESTAMP)
    stamp._micros = micros
    return stamp


# an enum member read through its class costs a dozen times a global's read: the hot path reads these
_COMMITTED: Final = CallStatus.COMMITTED
_FAILED: Final = CallStatus.FAILED


ZERO_CONNECTION: Final = ConnectionId(0)


class MigrationRefusedError(Exception):
    """A module update needs changes that cannot be made automatically; ``plan`` lists them."""

    def __init__(self, plan: MigrationPlan) -> None:
        super().__init__(
            "the update needs a manual migration:\n" + "\n".join(f"- {c}" for c in plan.incompatible)
        )
        self.plan = plan


@dataclass(frozen=True, slots=True)
class HostOptions:
    reducer_budget_seconds: float = 5.0
    # a module's top-level code (compiling and importing it, at publish and at every launch)
    load_budget_seconds: float = 30.0
    # past budget + grace, a supervisor kills the worker running the call (the shared deadline slot says when)
    hard_grace_seconds: float = 2.0
    # what one read (SQL, a one-off query, a subscription's initial rows) may return: rows (for others than the
    # owner, unless the database sets its own `row_limit`) and bytes (for everyone); None: no bound
    query_row_limit: int | None = 100_000
    query_byte_limit: int | None = 16 << 20
    # microseconds since the epoch, for reducer timestamps and schedules; None: the real clock. A clock of its own
    # also stops the scheduler's timer: its owner runs due calls with ``pop_due_call`` (spacetimedb.testing)
    clock: Callable[[], int] | None = None


@dataclass(slots=True, init=False)
class CallOutcome:
    """The result of one reducer call (or lifecycle / scheduled / DML job)."""

    status: CallStatus
    message: str | None
    timestamp: Timestamp
    offset: int | None  # the transaction's commitlog offset, when it changed something
    duration_micros: int
    tx_data: TxData | None
    # the caller's own subscription updates, which travel in its reducer result instead of a broadcast
    caller_updates: Sequence[tuple[int, Any]]
    value: Any  # what a job returned (e.g. SQL results)

    # (``init=False`` and an ``__init__`` of its own: mypyc compiles it, the dataclass-generated one runs as
    # interpreted code, on every call)
    def __init__(
        self,
        status: CallStatus,
        message: str | None,
        timestamp: Timestamp,
        offset: int | None = None,
        duration_micros: int = 0,
        tx_data: TxData | None = None,
        caller_updates: Sequence[tuple[int, Any]] = (),
        value: Any = None,
    ) -> None:
        self.status = status
        self.message = message
        self.timestamp = timestamp
        self.offset = offset
        self.duration_micros = duration_micros
        self.tx_data = tx_data
        self.caller_updates = caller_updates
        self.value = value

    @property
    def ok(self) -> bool:
        return self.status == _COMMITTED


@dataclass(slots=True)
class TransactionEvent:
    """A committed transaction, as the server needs it to update clients."""

    offset: int | None
    tx_data: TxData
    updates: TransactionUpdates
    caller_client: Any = None  # the client whose call this was, if any; it gets its part via the reply
    reducer: str | None = None
    disconnect_all: bool = False  # a module update invalidated every client's cache


Reply = Callable[[CallOutcome], None]
TransactionListener = Callable[[TransactionEvent], None]
_NO_UPDATES: Final = TransactionUpdates()


@dataclass(slots=True, init=False)
class ReducerCall:
    """One call, queued by ``ModuleHost.call_reducer`` as its own job (a worker runs a client's frame of calls
    itself, ``ClientHub.frame``)."""

    reducer: str
    args: Any  # BSATN bytes, or parsed JSON when ``json_args``
    sender: Identity
    connection_id: ConnectionId | None
    caller_client: Any
    reply: Reply | None
    json_args: bool
    auth: AuthCtx | None

    # (an ``__init__`` of its own, as ``CallOutcome``)
    def __init__(
        self,
        reducer: str,
        args: Any,
        sender: Identity,
        connection_id: ConnectionId | None,
        caller_client: Any,
        reply: Reply | None,
        json_args: bool = False,
        auth: AuthCtx | None = None,
    ) -> None:
        self.reducer = reducer
        self.args = args
        self.sender = sender
        self.connection_id = connection_id
        self.caller_client = caller_client
        self.reply = reply
        self.json_args = json_args
        self.auth = auth


class _Job:
    __slots__ = ("reply", "run")

    def __init__(self, run: Callable[[], CallOutcome | None], reply: Reply | None) -> None:
        self.run = run
        self.reply = reply


_STOP: Final = object()


class ModuleHost:
    """Runs one database's module; all writes go through ``submit``.

    ``start`` binds the module and starts the threads. A worker process instead starts the threads first
    (``start_threads``, before it forbids new ones) and then loads the module on the host thread and
    ``activate``s it there, so the module's top-level code runs under the same time limits as a reducer.
    """

    # the module and its runtime; without a module at construction, ``activate`` sets them (reading them
    # before raises AttributeError)
    loaded: LoadedModule
    runtime: ModuleRuntime

    def __init__(
        self,
        database_identity: Identity,
        owner_identity: Identity,
        db: RelationalDB,
        loaded: LoadedModule | None,
        module_log: ModuleLog,
        options: HostOptions | None = None,
        on_panic: Callable[[ModuleHost, BaseException], None] | None = None,
        deadline: DeadlineSlot | None = None,
    ) -> None:
        self.database_identity = database_identity
        self.owner_identity = owner_identity
        self.db = db
        if loaded is not None:
            self.loaded = loaded
            self.runtime = ModuleRuntime(loaded)
        self.module_log = module_log
        self.options = options or HostOptions()
        self.subscriptions = SubscriptionManager()
        # bound once: compiled, ``with subscriptions.lock`` looks up ``__enter__`` and ``__exit__`` at every commit
        # (taken and then ``try``: no commit runs where a time budget can interrupt it, see ``transact``)
        self._lock_subscriptions = self.subscriptions.lock.acquire
        self._unlock_subscriptions = self.subscriptions.lock.release
        # whether ``subscriptions.event_tables`` has any (``_find_event_tables`` keeps it): read at every commit
        self._has_event_tables = False
        self.views = LiveViews(self)
        self.faults: set[str] = set()
        self.reducer_metrics = ReducerMetrics()
        # why the database must not write (its disk was full), or None: calls that would write are refused
        self.read_only: str | None = None
        self._on_panic = on_panic
        self._listeners: list[TransactionListener] = []
        self._batch_listeners: list[Callable[[], None]] = []
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._sleeping = False
        self._failure: BaseException | None = None
        self._stopping = False
        self._clock = CallClock(deadline, self.options.hard_grace_seconds)
        # (sender, connection id, their commitlog encodings) of the last call
        self._caller_bytes: tuple[Any, Any, bytes, bytes] = (None, None, b"", b"")
        self._current_function: str | None = None
        self.now_micros: Callable[[], int] = self.options.clock or now_micros
        self._wall_clock = self.options.clock is None  # reducer timestamps: ``time.time_ns``, read inline
        self._scheduler = Scheduler(
            self._scheduled_call_due,
            name=f"scheduler:{database_identity.to_hex()[:16]}",
            clock=self.now_micros,
            timer=self.options.clock is None,
        )
        self._worker_thread = threading.Thread(
            target=self._run, name=f"host:{database_identity.to_hex()[:16]}", daemon=True
        )
        self._teardown_lock = threading.Lock()
        self._closed = False
        # runs a due scheduled procedure (name, BSATN of its arguments) outside any transaction; the Database
        # that owns the procedure threads sets it (None: nothing runs procedures, e.g. a bare host in a test)
        self.start_scheduled_procedure: Callable[[str, bytes], None] | None = None

    # -- start -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the module, load scheduled rows, disconnect clients left over from a crash, start threads."""
        self.start_threads()
        self.activate(self.loaded)

    def start_threads(self) -> None:
        """Start the host thread, the scheduler's timer thread and the budget watchdog, all idle."""
        register(self._clock)
        self._worker_thread.start()
        self._scheduler.start()

    def loaded_or_none(self) -> LoadedModule | None:
        """``loaded``, or None before ``activate`` has set it (reading the attribute then raises)."""
        return getattr(self, "loaded", None)

    def activate(self, loaded: LoadedModule) -> None:
        """Run ``loaded``: bind it, schedule its scheduled rows and queue the disconnects of clients a crash
        left behind."""
        self.loaded = loaded
        self.runtime = ModuleRuntime(loaded)
        self._scheduler.clear()
        with self.db.read_tx() as tx:
            self.runtime.bind(tx)
            self._find_event_tables()
            self._load_schedules(tx)
            dangling = [(row[0], row[1]) for row in tx.scan(ST_CLIENT_ID)]
        for identity, connection_id in dangling:
            self.submit(functools.partial(self.disconnect_now, identity, connection_id))

    def run_query(self, what: str, work: Callable[[], T], token: object = None) -> T:
        """Run a read (host thread) under the time budget; ``interrupt(token)`` from another thread stops it.
        Raises ``SqlTimeoutError`` (a ``SqlLimitError``) naming what stopped it."""
        budget = self.options.reducer_budget_seconds
        try:
            return self._clock.run(budget, work, what, token)
        except ReducerTimeout:
            raise SqlTimeoutError(f"{what} ran past its time budget ({budget:g}s)") from None
        except CallCancelled:
            raise SqlTimeoutError(f"{what} was cancelled: nobody waits for its answer any more") from None

    def check_budget(self) -> None:
        """Between two steps of a query (host thread): raise ``ReducerTimeout`` if its budget ran out, also while
        a step of it was held (a commit, see ``transact``)."""
        self._clock.checkpoint()

    def interrupt(self, token: object) -> bool:
        """Stop the read in progress if it is ``token``'s (from any thread)."""
        return self._clock.interrupt(token)

    def run_module_code(self, what: str, call: Callable[[], T]) -> tuple[CallStatus, str | None, T | None]:
        """Run a module's top-level code (while it loads) under the load budget."""
        self._current_function = what
        try:
            return run_user_code(self._clock, self.options.load_budget_seconds, what, call, self._log)
        finally:
            self._current_function = None

    def _find_event_tables(self) -> None:
        """The ids of the module's event tables, which the subscriptions mark and ``_commit`` takes rows out of."""
        self.subscriptions.event_tables = frozenset(
            self.runtime.table_id(t.name) for t in self.loaded.module_def.event_tables()
        )
        self._has_event_tables = bool(self.subscriptions.event_tables)

    def _load_schedules(self, tx: ReadTx) -> None:
        for table in self.loaded.module_def.scheduled_tables():
            table_id = self.runtime.table_id(table.name)
            self._scheduler.load_rows(tx.schema(table_id), tx.scan(table_id))

    # -- the queue ---------------------------------------------------------------------------------------------

    def submit(self, run: Callable[[], CallOutcome | None], reply: Reply | None = None) -> None:
        """Queue a job; ``reply`` gets its outcome on the host thread. Raises ``HostFailedError`` once failed."""
        self._enqueue(_Job(run, reply))

    def _enqueue(self, job: _Job | ReducerCall) -> None:
        if self._failure is not None or self._stopping:
            raise HostFailedError(self._failure_message())
        self._queue.append(job)
        if self._sleeping:
            self._wake.set()

    def queued(self) -> int:
        """Jobs waiting for the host thread."""
        return len(self._queue)

    @property
    def thread_id(self) -> int | None:
        return self._worker_thread.ident

    def _failure_message(self) -> str:
        if self._failure is not None:
            return f"the database host failed and is restarting: {self._failure}"
        return "the database host is shutting down"

    def _run(self) -> None:
        previous_sink = module_log_api.set_sink(self._log_sink)
        set_immediate_scheduler(self._schedule_immediate)
        queue = self._queue
        try:
            while True:
                done = 0
                batch_started = _perf_counter()
                while queue:
                    job = queue.popleft()
                    if job is _STOP:
                        return
                    self._execute(job)
                    if self._failure is not None:
                        return
                    done += 1
                    if (done == JOBS_PER_BATCH or _perf_counter() - batch_started >= BATCH_SECONDS) and queue:
                        # a long queue is answered in parts: replies held until it is empty would arrive in
                        # bursts, and clients waiting for them would leave the host idle in between
                        self._batch_done()
                        done = 0
                        batch_started = _perf_counter()
                self._batch_done()
                self._sleeping = True
                if not queue:
                    self._wake.wait()
                    self._wake.clear()
                self._sleeping = False
        finally:
            module_log_api.set_sink(previous_sink)
            if self._failure is not None:
                self._fail_queued()
            self._batch_done()

    def _execute(self, job: _Job | ReducerCall) -> None:
        outcome: CallOutcome | None
        try:
            # ``call_reducer`` queues the call itself as its job: one object, not a closure, its cell and a job
            if isinstance(job, ReducerCall):
                outcome = self.run_reducer(
                    job.reducer,
                    job.args,
                    job.json_args,
                    job.sender,
                    job.connection_id,
                    job.caller_client,
                    job.auth,
                )
            else:
                outcome = job.run()
        except BaseException as exc:  # the host's own machinery broke: panic
            self._panic(exc)
            if job.reply is not None:
                self._safe_reply(job.reply, self._internal(str(exc)))
            return
        if job.reply is not None and outcome is not None:
            self._safe_reply(job.reply, outcome)

    @staticmethod
    def _safe_reply(reply: Reply, outcome: CallOutcome) -> None:
        try:
            reply(outcome)
        except Exception:
            log.exception("a reply callback failed")

    def _fail_queued(self) -> None:
        while self._queue:
            job = self._queue.popleft()
            if job is not _STOP and job.reply is not None:
                self._safe_reply(job.reply, self._internal(self._failure_message()))

    @staticmethod
    def _internal(message: str) -> CallOutcome:
        return CallOutcome(CallStatus.INTERNAL_ERROR, message, Timestamp.now())

    # -- listeners ---------------------------------------------------------------------------------------------

    def add_batch_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs on the host thread after each batch of jobs: when the queue runs dry, and within a
        longer queue after every ``JOBS_PER_BATCH`` jobs or ``BATCH_SECONDS``, whichever comes first. A server
        hands a whole batch's replies to its event loop with one wake-up."""
        self._batch_listeners.append(listener)

    def _batch_done(self) -> None:
        for listener in self._batch_listeners:
            try:
                listener()
            except Exception:
                log.exception("a batch listener failed")

    def add_transaction_listener(self, listener: TransactionListener) -> None:
        """``listener(event)`` runs on the host thread for each committed transaction that clients must hear
        about: one with subscribers to update, or one after which every client must reconnect."""
        self._listeners.append(listener)

    # -- the transaction path ----------------------------------------------------------------------------------

    def _fault(self, point: str) -> None:
        if point in self.faults:
            raise InjectedFault(f"injected fault at {point}")

    def _commit(
        self,
        tx: MutTx,
        inputs: TxInputs | None,
        caller_client: Any = None,
        reducer: str | None = None,
        disconnect_all: bool = False,
    ) -> tuple[int | None, TxData, Sequence[tuple[int, Any]]]:
        """Commit, evaluate subscriptions on the post-commit state, tell listeners; on this thread only."""
        if self.faults:
            self._fault("commit")
        events = self._take_events(tx) if self._has_event_tables else ()
        manager = self.subscriptions
        views = self.views
        self._lock_subscriptions()
        try:
            if manager.queries or views.active:
                result = self.db.commit_tx(tx, inputs, read_view=True)
                view = result.read_view
                assert view is not None
                try:
                    data = result.tx_data
                    seen = data if not events else TxData((*data.tables, *events), data.schema_changed)
                    updates = manager.evaluate(seen, view)
                    if views.active:
                        views.evaluate(seen, view, updates, manager)
                finally:
                    view.release()
            else:  # nobody subscribes: no need to look at the post-commit state
                result = self.db.commit_tx(tx, inputs)
                data = result.tx_data
                updates = _NO_UPDATES
            for changes in data.tables:
                if changes.schema.schedule is not None:  # (asked here: most commits schedule nothing)
                    self._scheduler.on_commit(data)
                    break
            if (data.tables or events) and (updates is not _NO_UPDATES or disconnect_all):
                event = TransactionEvent(result.offset, data, updates, caller_client, reducer, disconnect_all)
                for listener in list(self._listeners):
                    listener(event)
        finally:
            self._unlock_subscriptions()
        # most commits: nobody subscribes to their tables
        if caller_client is None or updates is _NO_UPDATES:
            return result.offset, data, ()
        return result.offset, data, updates.updates.get(caller_client, ())

    def commit(self, tx: MutTx, inputs: TxInputs | None, reducer: str | None = None) -> int | None:
        """Commit ``tx`` as any job does (subscriptions, listeners); returns its offset. Host thread only."""
        return self._commit(tx, inputs, None, reducer)[0]

    def _take_events(self, tx: MutTx) -> tuple[TableChanges, ...]:
        """Remove the rows inserted into event tables from ``tx`` (they are never stored, nor logged) and return
        them as inserts for the subscriptions to see."""
        taken = []
        for table_id in self.subscriptions.event_tables:
            rows = list(tx.scan(table_id))
            if not rows:
                continue
            tx.clear(table_id)
            encode = tx.table(table_id).encode
            schema = tx.schema(table_id)
            taken.append(TableChanges(table_id, schema.name, schema, rows, [], [encode(r) for r in rows], []))
        return tuple(taken)

    def run_user_code(self, function: str, call: Callable[[], Any]) -> tuple[CallStatus, str | None, Any]:
        """Run module code under the time budget: (status, error message, returned value)."""
        self._current_function = function
        try:
            return run_user_code(self._clock, self.options.reducer_budget_seconds, function, call, self._log)
        finally:
            self._current_function = None

    def call_in_tx(
        self,
        reducer: str,
        args: tuple[Any, ...],
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        tx: MutTx,
        call: ReducerFunction | None = None,
        auth: AuthCtx | None = None,
        started: float | None = None,
    ) -> tuple[CallStatus, str | None]:
        """Run a reducer in ``tx`` under the time budget: (status, error message), counted in
        ``reducer_metrics``. The hot path of every call, so ``run_user_code``'s steps are inlined here; ``call`` is
        the runtime's ``reducer_call(reducer)`` when the caller has it already, ``started`` the
        ``time.perf_counter()`` the call's duration counts from (default: now)."""
        if started is None:
            started = _perf_counter()
        runtime = self.runtime
        slot = runtime.slot
        ctx = begin_reducer_call(  # ``runtime.begin_call``, without its frame
            slot,
            tx,
            sender,
            connection_id,
            timestamp,
            runtime.db,
            self.database_identity,
            _INTERNAL_AUTH if auth is None else auth,
        )
        clock = self._clock
        budget = self.options.reducer_budget_seconds
        self._current_function = reducer
        status, message = _COMMITTED, None
        try:
            if call is None:
                call = runtime.reducer_call(reducer)
            clock.arm(budget, reducer)
            try:
                call.call(ctx, args)
            finally:
                clock.disarm()
        except ReducerTimeout:
            clock.disarm()
            status, message = CallStatus.OUT_OF_BUDGET, out_of_budget_message(reducer, budget)
            self._log("Error", message, reducer, None)
        except BaseException as exc:
            status, message = _FAILED, module_error_text(exc)
            self._log("Error", message, reducer, exc)
        finally:
            slot.tx = _NO_TX  # ``runtime.end_call``
            self._current_function = None
        self.reducer_metrics.record(reducer, status is _COMMITTED, _perf_counter() - started)
        return status, message

    def _inputs(
        self,
        reducer: str,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp_micros: int,
        args: bytes,
    ) -> TxInputs:
        cached = self._caller_bytes
        if cached[0] is sender and cached[1] is connection_id:  # a client calls again: no need to re-encode
            identity, conn = cached[2], cached[3]
        else:
            identity, conn = sender.to_le_bytes(), (connection_id or ZERO_CONNECTION).to_le_bytes()
            self._caller_bytes = (sender, connection_id, identity, conn)
        return TxInputs(reducer, identity, conn, timestamp_micros, args)

    # -- reducer calls -----------------------------------------------------------------------------------------

    def call_reducer(
        self,
        reducer: str,
        args: bytes | Any,
        *,
        sender: Identity,
        connection_id: ConnectionId | None = None,
        caller_client: Any = None,
        json_args: bool = False,
        reply: Reply | None = None,
        auth: AuthCtx | None = None,
    ) -> None:
        """Queue a client's reducer call; ``args`` are BSATN bytes, or parsed JSON when ``json_args``."""
        self._enqueue(
            ReducerCall(reducer, args, sender, connection_id, caller_client, reply, json_args, auth)
        )

    def call_reducer_sync(self, reducer: str, args: bytes | Any, **kwargs: Any) -> CallOutcome:
        """Call and wait (for tests, tools and HTTP handlers that run off the event loop)."""
        future: Future[CallOutcome] = Future()
        self.call_reducer(reducer, args, reply=future.set_result, **kwargs)
        return future.result()

    def run_reducer(
        self,
        reducer: str,
        raw_args: bytes | Any,
        json_args: bool,
        sender: Identity,
        connection_id: ConnectionId | None,
        caller_client: Any,
        auth: AuthCtx | None = None,
    ) -> CallOutcome:
        started = _perf_counter()
        if self._wall_clock:
            micros = _time_ns() // 1000
            timestamp = _timestamp_of(micros)
        else:
            micros = self.now_micros()
            timestamp = Timestamp(micros)  # a test's clock: checked
        try:
            call = self.runtime.reducer_calls.get(reducer)
            if call is None:
                raise NoSuchReducerError(reducer)
            if call.reducer.lifecycle is not None:
                return CallOutcome(
                    CallStatus.INTERNAL_ERROR,
                    f"lifecycle reducer `{reducer}` cannot be called directly",
                    timestamp,
                )
            if json_args:
                args = call.decode_json(raw_args)
                arg_bytes = call.encode_bsatn(args)
            else:
                args = call.decode_bsatn(raw_args)
                # (``bytes(raw_args)`` of bytes returns them, but through a generic constructor call)
                arg_bytes = raw_args if type(raw_args) is bytes else bytes(raw_args)
        except (NoSuchReducerError, ReducerArgsError) as exc:
            return CallOutcome(CallStatus.INTERNAL_ERROR, str(exc), timestamp)
        tx = self.db.begin_mut_tx()
        try:
            status, message = self.call_in_tx(
                reducer, args, sender, connection_id, timestamp, tx, call, auth, started
            )
        except BaseException:
            tx.rollback()
            raise
        if status is not _COMMITTED:
            tx.rollback()
            return CallOutcome(status, message, timestamp, duration_micros=_micros_since(started))
        if not tx.has_changes():
            # nothing to log, schedule or tell a subscriber: committing it is letting the others in
            data = tx.commit()
            micros = int((_perf_counter() - started) * 1_000_000)  # ``_micros_since``, inline
            return CallOutcome(status, None, timestamp, None, micros, data)
        if self.read_only is not None:
            tx.rollback()
            return CallOutcome(
                CallStatus.NO_SPACE, self.read_only, timestamp, duration_micros=_micros_since(started)
            )
        inputs = self._inputs(reducer, sender, connection_id, micros, arg_bytes)
        offset, data, caller_updates = self._commit(tx, inputs, caller_client, reducer)
        micros = int((_perf_counter() - started) * 1_000_000)  # ``_micros_since``, inline: the common path
        return CallOutcome(_COMMITTED, None, timestamp, offset, micros, data, caller_updates)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def connect_client(
        self, identity: Identity, connection_id: ConnectionId, reply: Reply | None = None
    ) -> None:
        """Record the client in ``st_client`` and run ``client_connected``; a failure refuses the connection."""
        self.submit(lambda: self.connect_now(identity, connection_id), reply)

    def disconnect_client(
        self, identity: Identity, connection_id: ConnectionId, reply: Reply | None = None
    ) -> None:
        """Run ``client_disconnected`` and remove the ``st_client`` row (removed even if the reducer fails)."""
        self.submit(lambda: self.disconnect_now(identity, connection_id), reply)

    def connect_now(
        self, identity: Identity, connection_id: ConnectionId, auth: AuthCtx | None = None
    ) -> CallOutcome:
        """Record the client and run ``client_connected``. A read-only database does neither (it could not
        write them): its clients may still read."""
        self._fault("lifecycle")
        timestamp = Timestamp(self.now_micros())
        if self.read_only is not None:
            return CallOutcome(CallStatus.COMMITTED, None, timestamp)
        tx = self.db.begin_mut_tx()
        try:
            tx.insert(ST_CLIENT_ID, (identity, connection_id))
            if auth is not None and auth.payload is not None:
                tx.insert(ST_CONNECTION_CREDENTIALS_ID, (connection_id, auth.payload))
            hook = self.loaded.module_def.lifecycle_reducer("client_connected")
            status, message = CallStatus.COMMITTED, None
            if hook is not None:
                status, message = self.call_in_tx(
                    hook.name, (), identity, connection_id, timestamp, tx, auth=auth
                )
        except BaseException:
            self.db.rollback(tx)
            raise
        if status != CallStatus.COMMITTED:
            self.db.rollback(tx)
            return CallOutcome(status, message, timestamp)
        name = hook.name if hook is not None else "__identity_connected__"
        offset, data, _ = self._commit(
            tx, self._inputs(name, identity, connection_id, timestamp.micros, b""), None, name
        )
        return CallOutcome(CallStatus.COMMITTED, None, timestamp, offset, tx_data=data)

    def disconnect_now(
        self, identity: Identity, connection_id: ConnectionId, auth: AuthCtx | None = None
    ) -> CallOutcome:
        self._fault("lifecycle")
        timestamp = Timestamp(self.now_micros())
        row = (identity, connection_id)
        if self.read_only is not None:
            return CallOutcome(
                CallStatus.COMMITTED, None, timestamp
            )  # its row waits for the next launch that can write
        with self.db.read_tx() as read:
            if not read.contains(ST_CLIENT_ID, row):
                return CallOutcome(CallStatus.COMMITTED, None, timestamp)
        hook = self.loaded.module_def.lifecycle_reducer("client_disconnected")
        name = hook.name if hook is not None else "__identity_disconnected__"
        inputs = self._inputs(name, identity, connection_id, timestamp.micros, b"")
        tx = self.db.begin_mut_tx()
        try:
            _forget_client(tx, row)
            status, message = CallStatus.COMMITTED, None
            if hook is not None:
                status, message = self.call_in_tx(
                    hook.name, (), identity, connection_id, timestamp, tx, auth=auth
                )
        except BaseException:
            self.db.rollback(tx)
            raise
        if status == CallStatus.COMMITTED:
            offset, data, _ = self._commit(tx, inputs, None, name)
            return CallOutcome(CallStatus.COMMITTED, None, timestamp, offset, tx_data=data)
        self.db.rollback(tx)
        # a disconnect cannot be refused: remove the client row in a transaction of its own
        tx = self.db.begin_mut_tx()
        _forget_client(tx, row)
        offset, data, _ = self._commit(tx, inputs, None, name)
        return CallOutcome(status, message, timestamp, offset, tx_data=data)

    # -- scheduled reducers ------------------------------------------------------------------------------------

    def _scheduled_call_due(self, call: DueCall) -> None:
        try:
            self.submit(lambda: self.run_scheduled_call(call))
        except HostFailedError:
            pass

    def pop_due_call(self, until_micros: int) -> DueCall | None:
        """The earliest scheduled call due by ``until_micros``, for a host on a clock of its own (HostOptions)."""
        return self._scheduler.pop_due(until_micros)

    def run_scheduled_call(self, call: DueCall) -> CallOutcome:
        """Run a due scheduled call (host thread)."""
        self._fault("scheduler")
        timestamp = Timestamp(max(call.due_micros, self.now_micros()))
        if self.read_only is not None:  # try again once it may write
            retry = self.now_micros() + 1_000_000
            self._scheduler.schedule(call.table_id, call.scheduled_id, call.schedule_at, retry)
            return CallOutcome(CallStatus.COMMITTED, None, timestamp)
        table = self.db.datastore.tables.get(call.table_id)
        if table is None or table.schema.schedule is None or table.schema.primary_key is None:
            return CallOutcome(
                CallStatus.COMMITTED, None, timestamp
            )  # the table went away with a module update
        schema = table.schema
        assert schema.schedule is not None and schema.primary_key is not None
        reducer = schema.schedule.reducer_name
        if reducer in self.loaded.module_def.procedures:
            return self._run_scheduled_procedure(call, schema, timestamp)
        tx = self.db.begin_mut_tx()
        try:
            row = self._due_row(tx, call, schema)
            if row is None:
                self.db.rollback(tx)  # cancelled, or rescheduled (its new entry fires instead)
                return CallOutcome(CallStatus.COMMITTED, None, timestamp)
            status, message = self.call_in_tx(reducer, (row,), self.database_identity, None, timestamp, tx)
        except BaseException:
            self.db.rollback(tx)
            raise
        one_shot = call.schedule_at.tag == ScheduleAt.TIME
        if status != CallStatus.COMMITTED:
            self.db.rollback(tx)
            tx = self.db.begin_mut_tx()
        if one_shot:
            tx.delete(call.table_id, row)
        inputs = self._inputs(
            reducer,
            self.database_identity,
            None,
            timestamp.micros,
            self.runtime.encode_args(reducer, (row,)),
        )
        offset, data, _ = self._commit(tx, inputs if status == CallStatus.COMMITTED else None, None, reducer)
        if not one_shot:
            self._schedule_next_interval(call)
        return CallOutcome(status, message, timestamp, offset, tx_data=data)

    @staticmethod
    def _due_row(tx: MutTx, call: DueCall, schema: TableSchema) -> tuple[Any, ...] | None:
        """The row a due call is for, or None when it was deleted or its schedule changed since."""
        assert schema.schedule is not None and schema.primary_key is not None
        pk_index = schema.index_on((schema.primary_key,))
        assert pk_index is not None
        row = tx.find(call.table_id, pk_index.index_id, call.scheduled_id)
        if row is None or row[schema.schedule.at_column] != call.schedule_at:
            return None
        return row

    def _schedule_immediate(self, reducer: str, args: tuple[Any, ...] | bytes) -> None:
        """``ctx.volatile_nonatomic_schedule_immediate``: queue the call behind the current job (host thread).
        Its arguments (values, or a foreign module's BSATN) are checked now, so a wrong call fails the reducer
        that made it."""
        call = self.runtime.reducer_call(reducer)
        if isinstance(args, bytes):
            call.decode_bsatn(args)
            arg_bytes = args
        else:
            to_canonical = call.reducer.arg_to_canonical
            if len(args) == len(to_canonical):
                args = tuple(
                    value if convert is None else convert(value)
                    for convert, value in zip(to_canonical, args, strict=True)
                )
            arg_bytes = call.encode_bsatn(args)
        identity = self.database_identity
        self.submit(lambda: self.run_reducer(reducer, arg_bytes, False, identity, None, None))

    def _schedule_next_interval(self, call: DueCall) -> None:
        interval = call.schedule_at.value
        self._scheduler.schedule(
            call.table_id,
            call.scheduled_id,
            call.schedule_at,
            next_interval_due(call.due_micros, interval, self.now_micros()),
        )

    def _run_scheduled_procedure(
        self, call: DueCall, schema: TableSchema, timestamp: Timestamp
    ) -> CallOutcome:
        """A due row of a table that schedules a procedure. As upstream: the one-shot row is deleted (an interval
        rescheduled) in a transaction of its own *before* the procedure starts, since a procedure that stopped
        midway cannot be run again; the procedure then runs outside any transaction, on a procedure thread."""
        assert schema.schedule is not None and schema.primary_key is not None
        procedure = schema.schedule.reducer_name
        tx = self.db.begin_mut_tx()
        try:
            row = self._due_row(tx, call, schema)
            if row is None:
                self.db.rollback(tx)  # cancelled, or rescheduled (its new entry fires instead)
                return CallOutcome(CallStatus.COMMITTED, None, timestamp)
            one_shot = call.schedule_at.tag == ScheduleAt.TIME
            if one_shot:
                tx.delete(call.table_id, row)
            args = self.runtime.procedure_call(procedure).encode_bsatn((row,))
        except BaseException:
            self.db.rollback(tx)
            raise
        offset, data, _ = self._commit(tx, None)
        if not one_shot:
            self._schedule_next_interval(call)
        if self.start_scheduled_procedure is None:
            self.log_error(
                f"scheduled procedure `{procedure}` not run: no procedure threads", procedure, None
            )
        else:
            self.start_scheduled_procedure(procedure, args)
        return CallOutcome(CallStatus.COMMITTED, None, timestamp, offset, tx_data=data)

    # -- SQL DML, one-off jobs -----------------------------------------------------------------------------------

    def run_in_transaction(self, work: Callable[[MutTx], Any], reply: Reply | None = None) -> None:
        """Run ``work(tx)`` in a transaction on the host thread (SQL DML); an exception rolls it back and is the
        outcome's message, a return value is ``outcome.value``."""
        self.submit(lambda: self.transact(work), reply)

    def transact(self, work: Callable[[MutTx], Any]) -> CallOutcome:
        """``run_in_transaction`` for a caller already on the host thread (inside a job)."""
        timestamp = Timestamp.now()
        # under a time budget (an SQL write), only ``work`` may be stopped: a timeout between the transaction's
        # begin and its ``try``, or in its commit, would leave it open, or committed and reported as failed and
        # never told to subscribers
        clock = self._clock
        held = clock.hold()
        tx = self.db.begin_mut_tx()
        try:
            clock.resume(held)
            clock.checkpoint()  # (a budget that ran out during the begin stops here, before ``work``)
            value = work(tx)
            held = clock.hold()
        except Exception as exc:
            self.db.rollback(tx)
            return CallOutcome(CallStatus.FAILED, error_text(exc), timestamp)
        except BaseException:
            clock.disarm()  # (the watchdog repeats a timeout: a second one must not cut the rollback short)
            self.db.rollback(tx)
            raise
        try:
            if self.read_only is not None and tx.has_changes():
                self.db.rollback(tx)
                return CallOutcome(CallStatus.NO_SPACE, self.read_only, timestamp)
            offset, data, _ = self._commit(tx, None)
        finally:
            clock.resume(held)
        return CallOutcome(CallStatus.COMMITTED, None, timestamp, offset, tx_data=data, value=value)

    # -- module updates ----------------------------------------------------------------------------------------

    def plan_update(self, loaded: LoadedModule) -> MigrationPlan:
        return plan_migration(self.loaded.module_def, loaded.module_def)

    def update_module(self, loaded: LoadedModule, program: bytes) -> Future[CallOutcome]:
        """Migrate to a new module in one transaction; the outcome's ``value`` is the plan. Refused plans raise
        ``MigrationRefusedError`` from the future."""
        future: Future[CallOutcome] = Future()

        def job() -> CallOutcome:
            try:
                outcome = self.apply_update(loaded, program)
            except Exception as exc:
                future.set_exception(exc)
                return CallOutcome(CallStatus.FAILED, str(exc), Timestamp.now())
            future.set_result(outcome)
            return outcome

        self.submit(job)
        return future

    def apply_update(self, loaded: LoadedModule, program: bytes) -> CallOutcome:
        """``update_module`` for a caller on the host thread: raises ``MigrationRefusedError`` for a plan that
        is not automatic and ``MigrationError`` when a step fails; either way nothing changed."""
        if self.read_only is not None:
            raise MigrationError(
                f"the module cannot be updated while the database is read-only: {self.read_only}"
            )
        plan = self.plan_update(loaded)
        if not plan.is_automatic:
            raise MigrationRefusedError(plan)
        timestamp = Timestamp.now()
        runtime = ModuleRuntime(loaded)
        tx = self.db.begin_mut_tx()
        try:
            apply_migration(tx, plan)
            if plan.disconnects_clients:
                # the line SpacetimeDB writes to the module log for its DisconnectAllUsers step (crates/engine/
                # src/update.rs), which scripts and its smoketests look for
                self.module_log.system("Info", "Disconnecting all users")
            self._store_program(tx, loaded, program)
            runtime.bind(tx)
            self.views.check_update(tx, loaded.module_def.views, runtime)
        except BaseException:
            self.db.rollback(tx)
            raise
        previous = self.loaded
        self.loaded, self.runtime = loaded, runtime
        self._find_event_tables()
        offset, data, _ = self._commit(tx, None, disconnect_all=plan.disconnects_clients)
        self._reload_schedules()
        previous.unload()
        self.module_log.system("Info", f"module updated: {len(plan.steps)} step(s)")
        return CallOutcome(CallStatus.COMMITTED, None, timestamp, offset, tx_data=data, value=plan)

    def _store_program(self, tx: MutTx, loaded: LoadedModule, program: bytes) -> None:
        store_program(tx, self.database_identity, self.owner_identity, loaded, program)

    def _reload_schedules(self) -> None:
        self._scheduler.clear()
        with self.db.read_tx() as tx:
            self._load_schedules(tx)

    # -- logging -------------------------------------------------------------------------------------------------

    def _log_sink(self, level: str, message: str, filename: str | None, line: int | None) -> None:
        self.module_log.write(
            make_record(level, message, function=self._current_function, filename=filename, line_number=line)
        )

    def log_error(self, message: str, function: str | None, exc: BaseException | None) -> None:
        """An error of module code, in the module log (from any thread)."""
        self._log("Error", message, function, exc)

    def _log(self, level: str, message: str, function: str | None, exc: BaseException | None = None) -> None:
        loaded = self.loaded_or_none()
        log_to(self.module_log, loaded.module_name if loaded else None, level, message, function, exc)

    # -- failure and shutdown ----------------------------------------------------------------------------------

    @property
    def failed(self) -> BaseException | None:
        return self._failure

    @property
    def alive(self) -> bool:
        return self._failure is None and not self._stopping

    def _panic(self, exc: BaseException) -> None:
        if self._failure is not None:
            return
        self._failure = exc
        log.error("host of %s panicked: %r", self.database_identity.to_hex(), exc, exc_info=exc)
        try:
            self.module_log.system("Panic", f"the database host failed and will restart: {exc!r}")
        except Exception:
            pass
        if self._on_panic is not None:  # a worker process reports and exits here
            try:
                self._on_panic(self, exc)
            except Exception:
                log.exception("on_panic callback failed")
        threading.Thread(target=self._teardown, name="host-teardown", daemon=True).start()

    def panic(self, exc: BaseException) -> None:
        """Tear the host down from outside (e.g. its durability failed)."""
        self._panic(exc)
        self._queue.append(_STOP)
        self._wake.set()

    def _teardown(self) -> None:
        """Release every resource: scheduler, database (durability thread, directory lock), module, log."""
        with self._teardown_lock:
            if self._closed:
                return
            self._closed = True
        unregister(self._clock)
        self._scheduler.stop()
        if self._worker_thread.is_alive() and threading.current_thread() is not self._worker_thread:
            self._queue.append(_STOP)
            self._wake.set()
            self._worker_thread.join(10)
        try:
            self.db.close()
        except Exception:
            log.exception("closing the database of %s failed", self.database_identity.to_hex())
        loaded = self.loaded_or_none()
        if loaded is not None:
            loaded.unload()
        self.module_log.close()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, flush durability and release everything."""
        if self._failure is None and not self._stopping and self._worker_thread.is_alive():
            self._stopping = True
            self._queue.append(_STOP)
            self._wake.set()
            self._worker_thread.join(timeout)
        self._stopping = True
        self._teardown()


def run_user_code(
    clock: CallClock,
    budget_seconds: float,
    function: str,
    call: Callable[[], T],
    log_error: Callable[[str, str, str | None, BaseException | None], None],
) -> tuple[CallStatus, str | None, T | None]:
    """Run module code under a time budget; a raised exception or a timeout is an outcome, never an error of
    the caller: (status, error message, returned value)."""
    try:
        value = clock.run(budget_seconds, call, function)
    except ReducerTimeout:
        message = out_of_budget_message(function, budget_seconds)
        log_error("Error", message, function, None)
        return CallStatus.OUT_OF_BUDGET, message, None
    except BaseException as exc:
        message = module_error_text(exc)
        log_error("Error", message, function, exc)
        return CallStatus.FAILED, message, None
    return CallStatus.COMMITTED, None, value


def error_text(exc: BaseException) -> str:
    """What an exception says, as text that can travel anywhere: its message may hold lone surrogates (module
    code chooses it), which no UTF-8 channel, log or client can carry."""
    return escape_surrogates(str(exc) or type(exc).__name__)


def module_error_text(exc: BaseException) -> str:
    """What an exception raised by module code says to its caller: ``TypeName: message``, the last line of the
    traceback Python would print (a bare ``'missing'`` from ``{}["missing"]`` says nothing). The host's own
    refusals of a module (it does not load, it cannot be migrated) are already sentences, and keep their text."""
    if isinstance(exc, ModuleError | MigrationError):
        return error_text(exc)
    message = str(exc)
    return escape_surrogates(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def module_traceback(exc: BaseException, module_name: str | None) -> str:
    """The traceback of ``exc`` through the module's own code only (the host's frames are noise to its author),
    with the module's file names as published: ``File "loop.py", line 15, in tick``."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if module_name and module_name in frame.filename
    ]
    if not frames:
        return ""
    for frame in frames:
        frame.filename = module_log_api.display_name(frame.filename)
    lines = "".join(traceback.format_list(frames))
    return escape_surrogates(f"Traceback (most recent call last):\n{lines}{module_error_text(exc)}")


def out_of_budget_message(function: str, budget_seconds: float) -> str:
    return f"`{function}` ran out of its time budget ({budget_seconds:g}s)"


def _micros_since(started: float) -> int:
    return int((_perf_counter() - started) * 1_000_000)


def log_to(
    module_log: ModuleLog,
    module_name: str | None,
    level: str,
    message: str,
    function: str | None,
    exc: BaseException | None = None,
) -> None:
    """Write a record, pointing at the innermost line of module code in ``exc``'s traceback if any."""
    filename = line = None
    if exc is not None:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if module_name and module_name in f.filename
        ]
        if frames:
            filename, line = module_log_api.display_name(frames[-1].filename), frames[-1].lineno
        if level == "Error":
            # the owner's log gets the whole traceback through the module's code; the caller only the message
            trace = module_traceback(exc, module_name)
            if trace:
                message = f"{message}\n{trace}"
    module_log.write(make_record(level, message, function=function, filename=filename, line_number=line))


def store_program(
    tx: MutTx, database: Identity, owner: Identity, loaded: LoadedModule, program: bytes | bytearray
) -> None:
    """Replace the ``st_module`` row with this program (one row per database)."""
    for row in list(tx.scan(ST_MODULE_ID)):
        tx.delete(ST_MODULE_ID, row)
    tx.insert(ST_MODULE_ID, (database, owner, int(loaded.kind), loaded.program_hash, bytes(program), "0.1.0"))


def stored_program(tx: ReadTx | MutTx) -> tuple[Identity, Identity, int, bytes, bytes] | None:
    """(database identity, owner, kind, hash, program bytes) from ``st_module``, or None."""
    for row in tx.scan(ST_MODULE_ID):
        return row[0], row[1], row[2], row[3], row[4]
    return None


def _forget_client(tx: MutTx, row: tuple[Identity, ConnectionId]) -> None:
    """Remove a disconnecting client's ``st_client`` row and its ``st_connection_credentials`` row, as
    SpacetimeDB's ``delete_st_client`` does."""
    tx.delete(ST_CLIENT_ID, row)
    tx.delete_by_key(
        ST_CONNECTION_CREDENTIALS_ID, tx.schema(ST_CONNECTION_CREDENTIALS_ID).indexes[0].index_id, row[1]
    )
