"""Views inside a database's worker: queried like tables, subscribed to, and kept live after every commit.

SQL sees the module's views as tables through ``ViewReader``, a reader over a transaction in which each view is
a table (no indexes) whose rows are the view's result for the reader's caller. Its table id is the one its
``st_view`` row holds (taken from ``st_table``'s id sequence, so no table has it; clients get it in their
updates); a database published before ``st_view`` existed uses ``VIEW_TABLE_ID_BASE + index`` until its next
update writes the rows. So ``SELECT * FROM my_view WHERE ...``, joins with tables, one-off queries and ``/sql`` all compile and
run with the ordinary SQL engine; a view runs at most once per reader.

A view result a query computed is kept (``_Stored``, per view and caller, as upstream materializes it) and kept
current: each commit that changes what it read runs it again right away, so the next query reads it without
running the view. A result nobody has read for ``STORED_EXPIRY_SECONDS`` is dropped, and so is the least
recently read one past ``STORED_MAX``. A module update runs the
kept results' views with the new module first and is refused if one fails.

``LiveViews`` keeps subscriptions to queries that read views. Each distinct (query, caller) pair is one
``_Instance`` (a per-caller view has one per subscribed identity; a query over anonymous views only, one for
everyone) holding its last result as a multiset of BSATN rows and the tables its views read. After a commit,
only instances that read a changed table run again; the difference from their last result is sent to their
subscribers in the same ``TransactionUpdates`` the subscription manager fills. A view that raises (or runs past
its time budget) drops its subscribers' query sets with a ``SubscriptionError`` and is written to the module
log; the transaction that triggered it is unaffected. Everything here runs on the host thread.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spacetimedb.datastore import ST_VIEW_ID, TableSchema, TxData
from spacetimedb.datastore.schema import ColumnSchema
from spacetimedb.module import AuthCtx, MigrationError, ModuleRuntime, ReadSet, ViewDef, call_view
from spacetimedb.module.context import NO_JWT
from spacetimedb.sats import Identity, codec
from spacetimedb.sql import NO_LIMITS, QueryLimits, SelectPlan, SqlError, compile_subscription, execute
from spacetimedb.subscription import (
    SubscriptionError,
    SubscriptionManager,
    TableDelta,
    TableRows,
    TransactionUpdates,
)

from .watchdog import ReducerTimeout

if TYPE_CHECKING:
    from .module_host import ModuleHost

# far above any datastore table id, and still a u32 (protocol v1 sends table ids)
VIEW_TABLE_ID_BASE = 0xFFFF_0000
# as upstream: a view result a query computed stays, kept current, until nobody has read it for 10 minutes
STORED_EXPIRY_SECONDS = 600.0
# how often a commit looks for expired results (each look scans them all)
STORED_SWEEP_SECONDS = 10.0
# at most this many kept results per database: past it, the least recently read goes (each kept result may run
# again at every commit, so callers that query once each, e.g. anonymous ones, must not pile them up)
STORED_MAX = 1024
Row = tuple[Any, ...]
Subscriber = tuple[Any, int]  # (client id, query set id)


class ViewFailure(SqlError):
    """A view raised, returned something other than its declared type, or ran past its time budget."""

    def __init__(self, view: str, message: str) -> None:
        super().__init__(f"view `{view}` failed: {message}")
        self.view = view


# ---- views as tables ------------------------------------------------------------------------------------------


def view_table_ids(tx: Any, views: dict[str, ViewDef]) -> dict[str, int]:
    """The table id of each view's rows: its ``st_view`` row's, else ``VIEW_TABLE_ID_BASE + index``."""
    stored = {row[1]: row[2] for row in tx.scan(ST_VIEW_ID) if row[2] is not None}
    return {name: stored.get(name, VIEW_TABLE_ID_BASE + view.index) for name, view in views.items()}


class ViewReader:
    """A ``sql.plan.Reader`` over ``tx`` in which the module's views are tables, evaluated for ``caller``.

    ``read_set()`` is what was read from the datastore (by the query itself, table by table, and by the views it
    ran, down to index keys); ``views_used`` the views the query named. ``results`` is a per-transaction cache of
    view results, shared by readers of one commit: (view name, caller or None) -> (rows, what the view read)."""

    def __init__(
        self,
        tx: Any,
        live: LiveViews,
        caller: Identity,
        results: dict[tuple[str, Identity | None], tuple[list[Row], ReadSet]] | None = None,
        stored: bool = False,
    ) -> None:
        self.tx = tx
        self.live = live
        self.caller = caller
        self.results = {} if results is None else results
        self.stored = stored  # ``tx`` is the latest committed state: kept results may serve it
        self.tables_read: set[int] = set()
        self.view_reads = ReadSet()
        self.views_used: set[str] = set()
        self.view_ids = view_table_ids(tx, live.module_views())
        self.view_names = {table_id: name for name, table_id in self.view_ids.items()}

    def read_set(self) -> ReadSet:
        return ReadSet(frozenset(self.tables_read)) | self.view_reads

    def _view(self, table_id: int) -> ViewDef | None:
        name = self.view_names.get(table_id)
        return None if name is None else self.live.view_named(name)

    def view_rows(self, view: ViewDef) -> list[Row]:
        key = (view.name, None if view.anonymous else self.caller)
        found = self.results.get(key)
        if found is None:
            run = self.live.stored_result if self.stored else self.live.run_view
            found = self.results[key] = run(view, self.tx, self.caller)
        self.view_reads = self.view_reads | found[1]
        return found[0]

    def table_id(self, name: str) -> int | None:
        view_id = self.view_ids.get(name)
        if view_id is not None:
            return view_id
        return self.tx.table_id(name)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def schemas(self) -> list[TableSchema]:
        """The tables (not the views: their schemas depend on the caller), for "did you mean" only."""
        return self.tx.schemas()  # type: ignore[no-any-return]

    def schema(self, table_id: int) -> TableSchema:
        view = self._view(table_id)
        if view is None:
            return self.tx.schema(table_id)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)
        self.views_used.add(view.name)
        return self.live.schema_of(view, table_id)

    def scan(self, table_id: int) -> Iterator[Row]:
        view = self._view(table_id)
        if view is not None:
            return iter(self.view_rows(view))
        self.tables_read.add(table_id)
        return self.tx.scan(table_id)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def count(self, table_id: int) -> int:
        view = self._view(table_id)
        if view is not None:
            return len(self.view_rows(view))
        self.tables_read.add(table_id)
        return self.tx.count(table_id)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    # views have no indexes: what follows only ever reads datastore tables
    def seek(self, table_id: int, index_id: int, key: Any) -> list[Row]:
        self.tables_read.add(table_id)
        return self.tx.seek(table_id, index_id, key)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def find(self, table_id: int, index_id: int, key: Any) -> Row | None:
        self.tables_read.add(table_id)
        return self.tx.find(table_id, index_id, key)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def range(self, table_id: int, index_id: int, *bounds: Any) -> list[Row]:
        self.tables_read.add(table_id)
        return self.tx.range(table_id, index_id, *bounds)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def prefix(self, table_id: int, index_id: int, prefix: tuple[Any, ...]) -> list[Row]:
        self.tables_read.add(table_id)
        return self.tx.prefix(table_id, index_id, prefix)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def prefix_range(self, table_id: int, index_id: int, prefix: tuple[Any, ...], *bounds: Any) -> list[Row]:
        self.tables_read.add(table_id)
        return self.tx.prefix_range(table_id, index_id, prefix, *bounds)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def table(self, table_id: int) -> Any:
        self.tables_read.add(table_id)
        return self.tx.table(table_id)


# ---- live subscriptions -----------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Instance:
    """One distinct result: a query over views for one caller (or for everyone), and who subscribes to it."""

    key: tuple[str, Identity | None, bool]
    sql: str
    plan: SelectPlan
    caller: Identity
    is_owner: bool
    table: TableSchema  # what the rows are rows of, as clients see it
    encode: Callable[[Row], bytes]
    rows: Counter[bytes] = field(default_factory=Counter)
    reads: ReadSet = field(default_factory=ReadSet)
    subscribers: dict[Subscriber, None] = field(default_factory=dict)
    runtime: Any = None  # the module runtime its result was computed with


@dataclass(eq=False, slots=True)
class _Stored:
    """A view's result for one caller (``None`` for an anonymous view) that a query computed, kept current."""

    key: tuple[str, Identity | None]
    caller: Identity
    rows: list[Row]
    reads: ReadSet
    runtime: Any  # the module runtime it was computed with
    last_used: float  # time.monotonic() of the last query that read it


Dependent = Any  # an _Instance or a _Stored: what the inverted read sets lead to


class LiveViews:
    """Subscriptions to queries over views, and the view results queries computed, for one database host."""

    def __init__(self, host: ModuleHost) -> None:
        self.host = host
        self._instances: dict[tuple[str, Identity | None, bool], _Instance] = {}
        self._sets: dict[Subscriber, list[_Instance]] = {}
        # what each instance read, inverted: table id -> instances; table id -> index id -> key -> instances
        self._by_table: dict[int, dict[Dependent, None]] = {}
        self._by_key: dict[int, dict[int, dict[Any, dict[Dependent, None]]]] = {}
        self._stored: dict[tuple[str, Identity | None], _Stored] = {}
        self._last_sweep = time.monotonic()
        self._schemas: dict[str, tuple[ViewDef, TableSchema]] = {}
        # whether anyone subscribes to a view or a result is kept: a plain attribute, read by every commit
        self.active = False
        # the credentials of each caller's most recent connection (a view's ``ctx.sender_auth``): a per-caller
        # view is computed once per identity, so its connections share one result
        self.caller_auth: dict[Identity, AuthCtx] = {}

    # -- the module's views ---------------------------------------------------------------------------------------

    def module_views(self) -> dict[str, ViewDef]:
        loaded = self.host.loaded_or_none()
        return loaded.module_def.views if loaded is not None else {}

    def view_named(self, name: str) -> ViewDef | None:
        return self.module_views().get(name)

    def schema_of(self, view: ViewDef, table_id: int) -> TableSchema:
        cached = self._schemas.get(view.name)
        if cached is None or cached[0] is not view or cached[1].table_id != table_id:
            columns = tuple(
                ColumnSchema(i, e.name or f"col{i}", e.type) for i, e in enumerate(view.row_type.elements)
            )
            cached = self._schemas[view.name] = (
                view,
                TableSchema(table_id, view.name, columns, public=view.public),
            )
        return cached[1]

    def reader(self, tx: Any, caller: Identity) -> Any:
        """``tx`` with the views as tables for ``caller`` (``tx`` itself when the module has no views). ``tx``
        is the latest committed state: the view results kept for ``caller`` serve it, and those it computes
        are kept."""
        return ViewReader(tx, self, caller, stored=True) if self.module_views() else tx

    def run_view(
        self, view: ViewDef, tx: Any, caller: Identity, runtime: ModuleRuntime | None = None
    ) -> tuple[list[Row], ReadSet]:
        """Run ``view`` for ``caller`` under the time budget (the one already running, if any), with the
        host's module runtime unless told another."""
        host = self.host
        runtime = runtime or host.runtime
        clock = host._clock
        budget = host.options.reducer_budget_seconds

        def call() -> tuple[list[Row], ReadSet]:
            auth = self.caller_auth.get(caller, NO_JWT)
            return call_view(view, runtime, tx, caller, host.database_identity, auth)

        previous = host._current_function
        host._current_function = view.name
        try:
            return clock.run(budget, call, f"view {view.name}") if not clock.deadline else call()
        except ReducerTimeout:
            message = f"ran out of its time budget ({budget:g}s)"
            host._log("Error", f"view `{view.name}` {message}", view.name, None)
            raise ViewFailure(view.name, message) from None
        except Exception as exc:
            host._log("Error", f"view `{view.name}` failed: {exc}", view.name, exc)
            raise ViewFailure(view.name, str(exc) or type(exc).__name__) from None
        finally:
            host._current_function = previous

    # -- results kept for queries ----------------------------------------------------------------------------------

    def stored_result(self, view: ViewDef, tx: Any, caller: Identity) -> tuple[list[Row], ReadSet]:
        """``view``'s result for ``caller`` over the latest committed state ``tx``: the kept one, else run and
        kept (a view that fails is not kept)."""
        key = (view.name, None if view.anonymous else caller)
        stored = self._stored.get(key)
        now = time.monotonic()
        if stored is not None and stored.runtime is self.host.runtime:
            stored.last_used = now
            self._stored[key] = self._stored.pop(key)  # the most recently read last
            return stored.rows, stored.reads
        rows, reads = self.run_view(view, tx, caller)
        if stored is not None:
            self._forget(stored)
        while len(self._stored) >= STORED_MAX:
            self._forget(next(iter(self._stored.values())))
        self._stored[key] = fresh = _Stored(key, caller, rows, reads, self.host.runtime, now)
        self._index(fresh, reads, 1)
        self.active = True
        return rows, reads

    def _forget(self, stored: _Stored) -> None:
        if self._stored.get(stored.key) is stored:
            del self._stored[stored.key]
            self._index(stored, stored.reads, -1)
            self.active = bool(self._instances or self._stored)

    def _refresh_stored(self, stored: _Stored, tx: Any) -> None:
        """Run a kept result's view again after a commit (dropping it if the view is gone or fails)."""
        view = self.view_named(stored.key[0])
        if view is None:
            self._forget(stored)
            return
        try:
            rows, reads = self.run_view(view, tx, stored.caller)
        except ViewFailure:  # in the module log already; the next query runs it again and answers the error
            self._forget(stored)
            return
        self._keep(stored, rows, reads, self.host.runtime)

    def _keep(self, stored: _Stored, rows: list[Row], reads: ReadSet, runtime: ModuleRuntime) -> None:
        if reads != stored.reads:
            self._index(stored, stored.reads, -1)
            self._index(stored, reads, 1)
        stored.rows, stored.reads, stored.runtime = rows, reads, runtime

    def _sweep_stored(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < STORED_SWEEP_SECONDS:
            return
        self._last_sweep = now
        for stored in [s for s in self._stored.values() if now - s.last_used > STORED_EXPIRY_SECONDS]:
            self._forget(stored)

    def check_update(self, tx: Any, module_views: dict[str, ViewDef], runtime: ModuleRuntime) -> None:
        """Before a module update commits (``tx``: its transaction, ``runtime``: the new module's): run the new
        module's view for each kept result; raise ``MigrationError`` if one fails, as upstream refuses an
        update whose views fail. The results it computes are kept as computed with ``runtime`` (which serves
        only once the update commits and ``runtime`` is the host's)."""
        for stored in list(self._stored.values()):
            view = module_views.get(stored.key[0])
            if view is None:
                continue
            try:
                rows, reads = self.run_view(view, tx, stored.caller, runtime)
            except ViewFailure as exc:
                raise MigrationError(f"the updated module's {exc}") from None
            self._keep(stored, rows, reads, runtime)

    # -- subscribing ----------------------------------------------------------------------------------------------

    def has(self, client_id: Any, query_set_id: int) -> bool:
        return (client_id, query_set_id) in self._sets

    def subscribe_set(
        self,
        manager: SubscriptionManager,
        client_id: Any,
        query_set_id: int,
        queries: list[str],
        caller: Identity,
        is_owner: bool,
        tx: Any,
        limits: QueryLimits = NO_LIMITS,
    ) -> list[TableRows]:
        """Subscribe a query set: the queries over views here, the others with ``manager``; all or nothing."""
        queries = manager.expand_all_tables(queries, tx, is_owner)
        if not self.module_views():
            return manager.subscribe(client_id, query_set_id, queries, caller, is_owner, tx, limits)
        compiled = [self._compile(text, tx, caller, is_owner) for text in queries]
        over_views = [
            (text, found) for text, found in zip(queries, compiled, strict=True) if found is not None
        ]
        if not over_views:
            return manager.subscribe(client_id, query_set_id, queries, caller, is_owner, tx, limits)
        subscriber = (client_id, query_set_id)
        if subscriber in self._sets or query_set_id in manager.subscriptions(client_id):
            raise SubscriptionError(f"Query set {query_set_id} is already subscribed")
        rows = self._subscribe_views(subscriber, over_views, caller, is_owner, tx, limits)
        others = [text for text, found in zip(queries, compiled, strict=True) if found is None]
        if others:
            try:
                rows += manager.subscribe(client_id, query_set_id, others, caller, is_owner, tx, limits)
            except BaseException:
                self._drop(subscriber)
                raise
        return rows

    def _compile(
        self, text: str, tx: Any, caller: Identity, is_owner: bool
    ) -> tuple[SelectPlan, bool] | None:
        """(plan, whether it depends on the caller) for a query over views; None for other queries (and for
        queries that do not compile: the subscription manager reports those)."""
        reader = ViewReader(tx, self, caller)
        try:
            plan = compile_subscription(text, reader, caller, is_owner)
        except SqlError:
            return None
        if not reader.views_used:
            return None
        views = self.module_views()
        per_caller = any(not views[name].anonymous for name in reader.views_used)
        return plan, per_caller

    def _subscribe_views(
        self,
        subscriber: Subscriber,
        queries: list[tuple[str, tuple[SelectPlan, bool]]],
        caller: Identity,
        is_owner: bool,
        tx: Any,
        limits: QueryLimits,
    ) -> list[TableRows]:
        results: dict[Any, Any] = {}
        instances: list[_Instance] = []
        for text, (plan, per_caller) in queries:
            key = (plan.key(), caller if per_caller else None, is_owner)
            instance = self._instances.get(key) or next((i for i in instances if i.key == key), None)
            if instance is None:
                instance = self._new_instance(key, text, plan, caller, tx, results, limits)
            if instance not in instances:
                instances.append(instance)
        for instance in instances:
            self._attach(instance, subscriber)
        self._sets[subscriber] = instances
        return [_rows_of(instance) for instance in instances]

    def _new_instance(
        self,
        key: tuple[str, Identity | None, bool],
        text: str,
        plan: SelectPlan,
        caller: Identity,
        tx: Any,
        results: dict[Any, Any],
        limits: QueryLimits,
    ) -> _Instance:
        table = plan.return_table or TableSchema(0, "result", ())
        instance = _Instance(key, text, plan, caller, key[2], table, codec(plan.schema).encode)
        reader = ViewReader(tx, self, caller, results)
        try:
            rows = execute(plan, reader, limits).rows
        except ViewFailure as exc:
            raise SubscriptionError(str(exc), text) from None
        except SqlError as exc:
            raise SubscriptionError(str(exc), text) from None
        instance.rows = Counter(map(instance.encode, rows))
        instance.reads = reader.read_set()
        instance.runtime = self.host.runtime
        return instance

    def _attach(self, instance: _Instance, subscriber: Subscriber) -> None:
        if not instance.subscribers:
            self._instances[instance.key] = instance
            self._index(instance, instance.reads, 1)
            self.active = True
        instance.subscribers[subscriber] = None

    def _index(self, instance: Dependent, reads: ReadSet, step: int) -> None:
        for table_id in reads.tables:
            _bump(self._by_table, table_id, instance, step)
        for table_id, index_id, key in reads.keys:
            by_index = self._by_key.setdefault(table_id, {})
            _bump(by_index.setdefault(index_id, {}), key, instance, step)
            if not by_index[index_id]:
                del by_index[index_id]
            if not by_index:
                del self._by_key[table_id]

    def unsubscribe_set(
        self, manager: SubscriptionManager, client_id: Any, query_set_id: int, tx: Any
    ) -> list[TableRows] | None:
        """Drop a query set (its view queries here, the rest from ``manager``); with ``tx``, the rows it held."""
        subscriber = (client_id, query_set_id)
        instances = self._sets.get(subscriber)
        if instances is None:
            return manager.unsubscribe(client_id, query_set_id, tx)
        rows = [_rows_of(instance) for instance in instances] if tx is not None else None
        if query_set_id in manager.subscriptions(client_id):
            more = manager.unsubscribe(client_id, query_set_id, tx)
            if rows is not None and more:
                rows += more
        self._drop(subscriber)
        return rows

    def remove_client(self, client_id: Any) -> None:
        for subscriber in [s for s in self._sets if s[0] == client_id]:
            self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        for instance in self._sets.pop(subscriber, []):
            instance.subscribers.pop(subscriber, None)
            if not instance.subscribers and self._instances.get(instance.key) is instance:
                del self._instances[instance.key]
                self._index(instance, instance.reads, -1)
                self.active = bool(self._instances or self._stored)

    # -- after a commit ---------------------------------------------------------------------------------------------

    def evaluate(
        self, tx_data: TxData, tx: Any, result: TransactionUpdates, manager: SubscriptionManager
    ) -> None:
        """Add to ``result`` the changes of every view result ``tx_data`` may have changed (``tx``: a read view
        of the state after the commit). Instances computed with an older module run again whatever changed."""
        runtime = self.host.runtime
        candidates: dict[Dependent, None] = {}
        for changes in tx_data.tables:
            readers = self._by_table.get(changes.table_id)
            if readers:
                candidates.update(readers)
            by_index = self._by_key.get(changes.table_id)
            if by_index:
                _keyed_readers(changes, by_index, candidates)
        candidates.update((i, None) for i in self._instances.values() if i.runtime is not runtime)
        candidates.update((s, None) for s in self._stored.values() if s.runtime is not runtime)
        if self._stored:
            self._sweep_stored()
        if not candidates:
            return
        results: dict[Any, Any] = {}
        failed: list[tuple[_Instance, str]] = []
        for instance in candidates:
            if isinstance(instance, _Stored):
                self._refresh_stored(instance, tx)
                continue
            try:
                self._refresh(instance, tx, results, result)
            except (ViewFailure, SqlError) as exc:
                failed.append((instance, str(exc)))
        for instance, message in failed:
            self._fail(instance, message, result, manager)

    def _refresh(
        self, instance: _Instance, tx: Any, results: dict[Any, Any], result: TransactionUpdates
    ) -> None:
        reader = ViewReader(tx, self, instance.caller, results)
        if instance.runtime is not self.host.runtime:
            self._recompile(instance, reader)
        rows = Counter(map(instance.encode, execute(instance.plan, reader).rows))
        reads = reader.read_set()
        if reads != instance.reads:
            self._index(instance, instance.reads, -1)
            self._index(instance, reads, 1)
            instance.reads = reads
        inserts = list((rows - instance.rows).elements())
        deletes = list((instance.rows - rows).elements())
        instance.rows = rows
        if not inserts and not deletes:
            return
        table = instance.table
        delta = TableDelta(table.table_id, table.name, instance.plan.schema, inserts, deletes)
        updates = result.updates
        for client_id, query_set_id in instance.subscribers:
            updates.setdefault(client_id, []).append((query_set_id, delta))

    def _recompile(self, instance: _Instance, reader: ViewReader) -> None:
        """After a module update: the query again, over the new views, with rows of the same type."""
        try:
            plan = compile_subscription(instance.sql, reader, instance.caller, instance.is_owner)
        except SqlError as exc:
            raise ViewFailure(
                instance.table.name, f"the module was updated: {exc}; subscribe again"
            ) from None
        if plan.schema != instance.plan.schema:
            raise ViewFailure(instance.table.name, "the module update changed its row type; subscribe again")
        instance.plan = plan
        instance.runtime = self.host.runtime

    def _fail(
        self, instance: _Instance, message: str, result: TransactionUpdates, manager: SubscriptionManager
    ) -> None:
        for subscriber in list(instance.subscribers):
            client_id, query_set_id = subscriber
            self._drop(subscriber)
            if query_set_id in manager.subscriptions(client_id):
                manager.unsubscribe(client_id, query_set_id)
            updates = result.updates.get(client_id)
            if updates:
                kept = [(qsid, delta) for qsid, delta in updates if qsid != query_set_id]
                if kept:
                    result.updates[client_id] = kept
                else:
                    del result.updates[client_id]
            result.errors.setdefault(client_id, []).append(
                (query_set_id, f"{message}, executing: `{instance.sql}`")
            )


def _rows_of(instance: _Instance) -> TableRows:
    table = instance.table
    return TableRows(table.table_id, table.name, instance.plan.schema, list(instance.rows.elements()))


def _bump(index: dict[Any, dict[Dependent, None]], key: Any, instance: Dependent, step: int) -> None:
    if step > 0:
        index.setdefault(key, {})[instance] = None
        return
    readers = index.get(key)
    if readers is not None:
        readers.pop(instance, None)
        if not readers:
            del index[key]


def _keyed_readers(
    changes: Any, by_index: dict[int, dict[Any, dict[Dependent, None]]], found: dict[Dependent, None]
) -> None:
    """Add to ``found`` the instances that read the key of an index that a changed row has (or had)."""
    indexes = {index.index_id: index.columns for index in changes.schema.indexes}
    for index_id, by_key in by_index.items():
        columns = indexes.get(index_id)
        if columns is None:
            continue
        for row in (*changes.inserts, *changes.deletes):
            key = row[columns[0]] if len(columns) == 1 else tuple(row[c] for c in columns)
            readers = by_key.get(key)
            if readers:
                found.update(readers)
