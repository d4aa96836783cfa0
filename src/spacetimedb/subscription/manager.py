"""The per-database subscription manager: query sets per client, deduplicated queries, candidate selection
through inverted indexes, and the per-transaction fan-out."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spacetimedb.datastore import ST_ROW_LEVEL_SECURITY_ID, TxData
from spacetimedb.sats import Identity
from spacetimedb.sql import (
    NO_LIMITS,
    QueryLimits,
    SelectPlan,
    SqlError,
    check_estimate,
    compile_subscription,
    result_too_large,
    row_limit_exceeded,
)
from spacetimedb.sql.plan import Reader

from .delta import SubscriptionPlanError, TxContext
from .query import (
    AlwaysTrigger,
    ClientId,
    EdgeTrigger,
    EqTrigger,
    Query,
    Subscriber,
    TableDelta,
    TableRows,
    Trigger,
)


class SubscriptionError(Exception):
    """A subscribe / unsubscribe request failed; ``query`` is the offending query text when there is one."""

    def __init__(self, message: str, query: str | None = None) -> None:
        super().__init__(f"{message}, executing: `{query}`" if query is not None else message)
        self.message = message
        self.query = query


@dataclass(slots=True)
class TransactionUpdates:
    """What ``evaluate`` found for one transaction.

    ``updates``: per client, ``(query_set_id, TableDelta)`` pairs — only for query sets whose results changed;
    clients with nothing are absent. ``errors``: per client, ``(query_set_id, message)`` for query sets that
    were dropped (their tables changed shape, RLS rules changed, or evaluation failed): tell the client, it
    holds rows it will receive no more updates for."""

    updates: dict[ClientId, list[tuple[int, TableDelta]]] = field(default_factory=dict)
    errors: dict[ClientId, list[tuple[int, str]]] = field(default_factory=dict)
    candidates: int = 0  # distinct queries evaluated
    duration_micros: int = 0


class _TableTriggers:
    """Inverted indexes of the queries that read one table."""

    __slots__ = ("always", "edges", "eq")

    def __init__(self) -> None:
        self.always: dict[Query, int] = {}
        # column -> value -> queries
        self.eq: dict[int, dict[Any, dict[Query, int]]] = {}
        # (column, other table, index id, other column) -> (trigger, value -> queries)
        self.edges: dict[tuple[int, int, int, int], tuple[EdgeTrigger, dict[Any, dict[Query, int]]]] = {}

    def empty(self) -> bool:
        return not (self.always or self.eq or self.edges)


def _bump(counts: dict[Query, int], query: Query, step: int) -> None:
    n = counts.get(query, 0) + step
    if n > 0:
        counts[query] = n
    else:
        counts.pop(query, None)


_ALL_TABLES = re.compile(r"\s*SELECT\s+\*\s+FROM\s+\*\s*\Z", re.IGNORECASE)


class SubscriptionManager:
    """All live subscriptions of one database.

    Thread safety: every method takes ``self.lock`` (re-entrant). For exactly-once delivery, the host thread
    must hold ``manager.lock`` from before it commits a transaction (while it still holds the datastore's
    write lock) until ``evaluate`` has returned, evaluating against a read view of the post-commit state
    (``RelationalDB.commit_tx(tx, read_view=True)``). ``subscribe`` / ``unsubscribe`` called from other threads open
    their read transaction *first* and then enter the manager, so each sees either the state before the
    commit (and the commit's evaluation includes it) or the state after it (and is registered after that
    evaluation) — never both, never neither. Lock order is always datastore lock, then manager lock.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # the distinct queries by key; others only read it (a commit skips evaluation while it is empty)
        self.queries: dict[str, Query] = {}
        self._clients: dict[ClientId, dict[int, list[Query]]] = {}
        self._triggers: dict[int, _TableTriggers] = {}
        # tables whose rows are events (never stored): their deltas are marked ``is_event``
        self.event_tables: frozenset[int] = frozenset()

    # -- introspection ----------------------------------------------------------------------------------

    @property
    def query_count(self) -> int:
        """Distinct queries (after deduplication)."""
        return len(self.queries)

    def counts(self) -> tuple[int, int]:
        """(clients with at least one query set, query sets over all clients)."""
        with self.lock:
            return len(self._clients), sum(len(sets) for sets in self._clients.values())

    def subscriptions(self, client_id: ClientId) -> dict[int, list[str]]:
        """The query sets of a client: id -> the SQL of each query."""
        with self.lock:
            return {qsid: [q.sql for q in qs] for qsid, qs in self._clients.get(client_id, {}).items()}

    # -- subscribe / unsubscribe ------------------------------------------------------------------------

    def expand_all_tables(self, queries: list[str], tx: Reader, is_owner: bool) -> list[str]:
        """``SELECT * FROM *`` (upstream's ``is_subscribe_to_all_tables``, crates/core/src/subscription/query.rs)
        stands for ``SELECT * FROM t`` for every user table the caller may read, event tables aside, as they are
        when the query set is subscribed (tables added later are not included)."""
        if not any(_ALL_TABLES.match(text) for text in queries):
            return queries
        expanded = [text for text in queries if not _ALL_TABLES.match(text)]
        for schema in tx.schemas():
            readable = schema.public or is_owner
            if not schema.is_system and readable and schema.table_id not in self.event_tables:
                expanded.append(f'SELECT * FROM "{schema.name}"')
        return expanded

    def subscribe(
        self,
        client_id: ClientId,
        query_set_id: int,
        queries: list[str],
        caller: Identity,
        is_owner: bool,
        tx: Reader,
        limits: QueryLimits = NO_LIMITS,
    ) -> list[TableRows]:
        """Add a query set for a client and return its current rows grouped by table.

        ``tx`` is a read view (``ReadTx``, or the ``MutTx`` of the caller) of the state the client starts
        from; keep it open until this returns. Queries are compiled and evaluated without the manager lock
        (the open read view already keeps the state still) and registered under it, so a failure (a
        ``SubscriptionError`` naming the query) leaves no trace. The initial rows must fit ``limits``: the row
        limit for others than the owner (the database's ``row_limit``, else ``limits.max_rows``), the byte
        limit for everyone."""
        with self.lock:
            self._check_new_set(client_id, query_set_id)
        queries = self.expand_all_tables(queries, tx, is_owner)
        by_key: dict[str, Query] = {}
        for text in queries:
            plan, key = self._compile(text, caller, is_owner, tx)
            if key not in by_key:
                # an unlocked peek only saves building plans twice; registration decides under the lock
                by_key[key] = self.queries.get(key) or _new_query(key, text, plan)
        candidates = list(by_key.values())
        all_sql = "; ".join(q.sql for q in candidates)
        max_rows = limits.rows_for_caller(is_owner, tx)
        if max_rows is not None and candidates:
            try:
                check_estimate([q.plan for q in candidates], tx, max_rows)
            except SqlError as exc:
                raise SubscriptionError(str(exc), all_sql) from None
        rows = []
        for query in candidates:
            try:
                rows.append((query, query.initial_rows(tx)))
            except Exception as exc:
                raise SubscriptionError(f"evaluation failed: {exc}", query.sql) from None
        _check_size(rows, max_rows, limits.max_bytes, all_sql)
        subscriber = (client_id, query_set_id)
        with self.lock:
            self._check_new_set(client_id, query_set_id)
            resolved = [self.queries.get(q.key) or q for q in candidates]
            for query in resolved:
                self._attach(query, subscriber, is_owner)
            self._clients.setdefault(client_id, {})[query_set_id] = resolved
        return _group(rows)

    def _check_new_set(self, client_id: ClientId, query_set_id: int) -> None:
        if query_set_id in self._clients.get(client_id, {}):
            raise SubscriptionError(f"Query set {query_set_id} is already subscribed")

    @staticmethod
    def _compile(text: str, caller: Identity, is_owner: bool, tx: Reader) -> tuple[SelectPlan, str]:
        try:
            plan = compile_subscription(text, tx, caller, is_owner)
        except SqlError as exc:
            raise SubscriptionError(str(exc), text) from None
        return plan, plan.key()

    def unsubscribe(
        self, client_id: ClientId, query_set_id: int, tx: Reader | None = None
    ) -> list[TableRows] | None:
        """Drop a query set. With ``tx`` (a read view of the current state, open until this returns) return
        the rows the client must now delete, grouped by table (the protocol's SendDroppedRows); without,
        return None."""
        with self.lock:
            queries = self._clients.get(client_id, {}).get(query_set_id)
            if queries is None:
                raise SubscriptionError(f"Query set {query_set_id} is not subscribed")
        rows = _group((q, q.initial_rows(tx)) for q in queries) if tx is not None else None
        with self.lock:
            sets = self._clients.get(client_id, {})
            if sets.get(query_set_id) is queries:  # not dropped meanwhile by an evaluation error
                del sets[query_set_id]
                if not sets:
                    del self._clients[client_id]
                for query in queries:
                    self._detach(query, (client_id, query_set_id))
        return rows

    def remove_client(self, client_id: ClientId) -> None:
        """Forget every query set of a disconnected client."""
        with self.lock:
            for query_set_id, queries in self._clients.pop(client_id, {}).items():
                for query in queries:
                    self._detach(query, (client_id, query_set_id))

    def _attach(self, query: Query, subscriber: Subscriber, is_owner: bool) -> None:
        if query.key not in self.queries:
            self.queries[query.key] = query
            for trigger in query.triggers:
                self._register(trigger, query, 1)
        query.subscribers[subscriber] = is_owner

    def _detach(self, query: Query, subscriber: Subscriber) -> None:
        query.subscribers.pop(subscriber, None)
        if not query.subscribers and self.queries.get(query.key) is query:
            del self.queries[query.key]
            for trigger in query.triggers:
                self._register(trigger, query, -1)

    def _register(self, trigger: Trigger, query: Query, step: int) -> None:
        table = self._triggers.get(trigger.table_id)
        if table is None:
            table = self._triggers[trigger.table_id] = _TableTriggers()
        if isinstance(trigger, AlwaysTrigger):
            _bump(table.always, query, step)
        elif isinstance(trigger, EqTrigger):
            by_value = table.eq.setdefault(trigger.pos, {})
            _register_values(by_value, trigger.values, query, step)
            if not by_value:
                del table.eq[trigger.pos]
        else:
            key = (trigger.pos, trigger.other_table, trigger.index.index_id, trigger.other_pos)
            entry = table.edges.get(key)
            if entry is None:
                entry = table.edges[key] = (trigger, {})
            _register_values(entry[1], trigger.values, query, step)
            if not entry[1]:
                del table.edges[key]
        if table.empty():
            del self._triggers[trigger.table_id]

    # -- per transaction ---------------------------------------------------------------------------------

    def evaluate(self, tx_data: TxData, tx: Reader) -> TransactionUpdates:
        """The updates every client must receive for a committed transaction.

        ``tx`` is a read view of the state right after the commit. Only the transaction's rows are looked at
        (plus index probes for joins), and only queries a changed row can affect are evaluated; each distinct
        query is evaluated once and its ``TableDelta`` shared by all its subscribers. The caller of a reducer
        is included like any client: the server routes its part into the reducer result."""
        start = time.perf_counter()
        result = TransactionUpdates()
        with self.lock:
            if tx_data.is_empty() or not self.queries:
                return result
            if tx_data.schema_changed:
                self._drop_invalid(tx, result)
            rls = tx_data.for_table(ST_ROW_LEVEL_SECURITY_ID)
            if rls is not None:
                self._drop_for_rls({row[0] for row in rls.inserts + rls.deletes}, result)
            ctx = TxContext(tx_data, tx)
            candidates = self._candidates(ctx)
            result.candidates = len(candidates)
            updates = result.updates
            for query in candidates:
                try:
                    delta = query.evaluate(ctx)
                except Exception as exc:
                    self._drop_query(query, f"evaluation failed: {exc}", result)
                    continue
                if delta is None:
                    continue
                if delta.table_id in self.event_tables:
                    delta.is_event = True
                for client_id, query_set_id in query.subscribers:
                    found = updates.get(client_id)
                    if found is None:
                        updates[client_id] = [(query_set_id, delta)]
                    else:
                        found.append((query_set_id, delta))
            if result.errors:
                _discard_failed_sets(result)
        result.duration_micros = int((time.perf_counter() - start) * 1_000_000)
        return result

    def _candidates(self, ctx: TxContext) -> dict[Query, Any]:
        """The queries a transaction may affect, each once (in a stable order)."""
        found: dict[Query, Any] = {}
        for table_id, changes in ctx.changes.items():
            table = self._triggers.get(table_id)
            if table is None:
                continue
            if table.always:
                found.update(table.always)
            for pos, by_value in table.eq.items():
                buckets = ctx.buckets(table_id, pos)
                if len(buckets) <= len(by_value):
                    for value in buckets:
                        queries = by_value.get(value)
                        if queries:
                            found.update(queries)
                else:
                    for value, queries in by_value.items():
                        if value in buckets:
                            found.update(queries)
            for (pos, other, index_id, other_pos), (trigger, by_value) in table.edges.items():
                keys = {row[pos] for row in changes.inserts}
                keys.update(row[pos] for row in changes.deletes)
                multi = len(trigger.index.columns) > 1
                for key in keys:
                    rows = (
                        ctx.tx.prefix(other, index_id, (key,)) if multi else ctx.tx.seek(other, index_id, key)
                    )
                    for row in rows:
                        queries = by_value.get(row[other_pos])
                        if queries:
                            found.update(queries)
        return found

    # -- dropping queries --------------------------------------------------------------------------------

    def _drop_invalid(self, tx: Reader, result: TransactionUpdates) -> None:
        for query in list(self.queries.values()):
            reason = query.invalid_after_schema_change(tx)
            if reason is not None:
                self._drop_query(query, f"Subscription invalidated: {reason}; subscribe again", result)

    def _drop_for_rls(self, table_ids: set[int], result: TransactionUpdates) -> None:
        for query in list(self.queries.values()):
            if not query.table_ids & table_ids:
                continue
            for subscriber, is_owner in list(query.subscribers.items()):
                if not is_owner:
                    self._drop_set(subscriber, "Row-level security rules changed; subscribe again", result)

    def _drop_query(self, query: Query, message: str, result: TransactionUpdates) -> None:
        for subscriber in list(query.subscribers):
            self._drop_set(subscriber, message, result)

    def _drop_set(self, subscriber: Subscriber, message: str, result: TransactionUpdates) -> None:
        client_id, query_set_id = subscriber
        sets = self._clients.get(client_id, {})
        queries = sets.pop(query_set_id, None)
        if not sets:
            self._clients.pop(client_id, None)
        if queries is None:
            return
        for query in queries:
            self._detach(query, subscriber)
        result.errors.setdefault(client_id, []).append((query_set_id, message))


def _check_size(
    rows: list[tuple[Query, list[bytes]]], max_rows: int | None, max_bytes: int | None, sql: str
) -> None:
    """Refuse initial rows beyond the limits (the estimate before evaluating can be too low)."""
    if max_rows is not None:
        count = sum(len(found) for _, found in rows)
        if count > max_rows:
            raise SubscriptionError(str(row_limit_exceeded(max_rows)), sql)
    if max_bytes is not None:
        size = sum(len(row) for _, found in rows for row in found)
        if size > max_bytes:
            raise SubscriptionError(str(result_too_large(max_bytes)), sql)


def _new_query(key: str, text: str, plan: SelectPlan) -> Query:
    try:
        return Query(key, text, plan)
    except SubscriptionPlanError as exc:
        raise SubscriptionError(str(exc), text) from None


def _register_values(
    by_value: dict[Any, dict[Query, int]], values: Iterable[Any], query: Query, step: int
) -> None:
    for value in values:
        queries = by_value.get(value)
        if queries is None:
            if step < 0:
                continue
            queries = by_value[value] = {}
        _bump(queries, query, step)
        if not queries:
            del by_value[value]


def _discard_failed_sets(result: TransactionUpdates) -> None:
    for client_id, errors in result.errors.items():
        failed = {query_set_id for query_set_id, _ in errors}
        updates = result.updates.get(client_id)
        if updates:
            kept = [(qsid, delta) for qsid, delta in updates if qsid not in failed]
            if kept:
                result.updates[client_id] = kept
            else:
                del result.updates[client_id]


def _group(results: Iterable[tuple[Query, list[bytes]]]) -> list[TableRows]:
    by_table: dict[int, TableRows] = {}
    for query, rows in results:
        table = query.table
        entry = by_table.get(table.table_id)
        if entry is None:
            by_table[table.table_id] = TableRows(table.table_id, table.name, table.row_type, list(rows))
        else:
            entry.rows.extend(rows)
    return list(by_table.values())
