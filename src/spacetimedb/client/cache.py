"""The client cache of one table, following the official SDKs' rules (TypeScript ``table_cache.ts``).

* Rows are reference-counted per occurrence: a row matched by two query sets arrives (and leaves) twice.
* A table with a primary key is keyed by it; a delete and an insert of the same key in one message are an
  *update* (``on_update(old, new)``), with the reference count moved by inserts minus deletes.
* A table without a primary key is keyed by the row's exact BSATN bytes, so a delete must repeat the bytes of
  the insert.
* Changes are applied for the whole message first; the callbacks they trigger are returned (not run), so that
  every callback sees the cache after the whole transaction.

Indexes for ``find`` / ``filter`` are maintained as rows come and go. Nothing here locks: the connection holds
its lock around every message and every read.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from .schema import IndexSchema, TableSchema

log = logging.getLogger("spacetimedb.client")

INSERT, DELETE, UPDATE = "insert", "delete", "update"
_callback_ids = itertools.count(1)

# (kind, table cache, arguments after the context)
PendingCallback = tuple[str, "TableCache", tuple[Any, ...]]
# (kind, row bytes, row)
Operation = tuple[str, bytes, Any]


class _Index:
    """One index of the cache: index value -> row keys."""

    def __init__(self, spec: IndexSchema) -> None:
        self.spec = spec
        columns = spec.columns
        if len(columns) == 1:
            (column,) = columns
            self.value_of: Callable[[Any], Any] = lambda row: row[column]
        else:
            self.value_of = lambda row: tuple(row[c] for c in columns)
        self.unique: dict[Any, Any] = {}
        self.multi: dict[Any, dict[Any, None]] = {}

    def add(self, key: Any, row: Any) -> None:
        value = self.value_of(row)
        if self.spec.unique:
            self.unique[value] = key
        else:
            self.multi.setdefault(value, {})[key] = None

    def remove(self, key: Any, row: Any) -> None:
        value = self.value_of(row)
        if self.spec.unique:
            # within one message the new holder of a unique value may arrive before the old one leaves
            if self.unique.get(value) == key:
                del self.unique[value]
            return
        keys = self.multi.get(value)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self.multi[value]


class TableCache:
    """Rows of one table the client is subscribed to, with their reference counts and indexes."""

    def __init__(self, schema: TableSchema) -> None:
        self.schema = schema
        self.rows: dict[Any, list[Any]] = {}  # key -> [row, reference count]
        self.indexes = {spec.accessor: _Index(spec) for spec in schema.indexes}
        self.callbacks: dict[str, dict[int, Callable[..., None]]] = {INSERT: {}, DELETE: {}, UPDATE: {}}
        pk = schema.primary_key
        self._pk_of: Callable[[Any], Any] | None = None if pk is None else (lambda row: row[pk])

    # -- reading ------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    def snapshot(self) -> list[Any]:
        return [entry[0] for entry in self.rows.values()]

    def find(self, accessor: str, value: Any) -> Any:
        index = self.indexes[accessor]
        key = index.unique.get(value)
        if key is None:
            return None
        entry = self.rows.get(key)
        return None if entry is None else entry[0]

    def filter(self, accessor: str, value: Any) -> list[Any]:
        index = self.indexes[accessor]
        columns = index.spec.columns
        if len(columns) > 1 and isinstance(value, tuple) and len(value) < len(columns):
            return [row for row in self.snapshot() if tuple(row[c] for c in columns[: len(value)]) == value]
        if index.spec.unique:
            found = self.find(accessor, value)
            return [] if found is None else [found]
        return [self.rows[key][0] for key in index.multi.get(value, ())]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.snapshot())

    # -- callbacks ----------------------------------------------------------------------------------------------

    def add_callback(self, kind: str, callback: Callable[..., None]) -> int:
        callback_id = next(_callback_ids)
        self.callbacks[kind][callback_id] = callback
        return callback_id

    def remove_callback(self, kind: str, callback_id: int) -> None:
        self.callbacks[kind].pop(callback_id, None)

    # -- applying a message ---------------------------------------------------------------------------------------

    def apply(self, operations: list[Operation]) -> list[PendingCallback]:
        """Apply one message's operations on this table (inserts and deletes in arrival order)."""
        if self._pk_of is None:
            pending: list[PendingCallback] = []
            for kind, raw, row in operations:
                self._apply_keyed(kind, raw, row, 1, pending)
            return pending
        return self._apply_with_primary_key(operations, self._pk_of)

    def events(self, rows: list[Any]) -> list[PendingCallback]:
        """Rows of an event table: ``on_insert`` only, never stored."""
        return [(INSERT, self, (row,)) for row in rows]

    def _apply_with_primary_key(
        self, operations: list[Operation], pk_of: Callable[[Any], Any]
    ) -> list[PendingCallback]:
        inserts: dict[Any, list[Any]] = {}
        deletes: dict[Any, list[Any]] = {}
        for kind, _, row in operations:
            target = inserts if kind == INSERT else deletes
            key = pk_of(row)
            entry = target.get(key)
            if entry is None:
                target[key] = [row, 1]
            else:
                entry[1] += 1
        pending: list[PendingCallback] = []
        for key, (row, count) in inserts.items():
            removed = deletes.pop(key, None)
            if removed is None:
                self._apply_keyed(INSERT, key, row, count, pending)
            else:
                self._update(key, row, count - removed[1], pending)
        for key, (row, count) in deletes.items():
            self._apply_keyed(DELETE, key, row, count, pending)
        return pending

    def _apply_keyed(self, kind: str, key: Any, row: Any, count: int, pending: list[PendingCallback]) -> None:
        entry = self.rows.get(key)
        if kind == INSERT:
            if entry is not None:
                entry[1] += count
                return
            self.rows[key] = [row, count]
            for index in self.indexes.values():
                index.add(key, row)
            pending.append((INSERT, self, (row,)))
            return
        if entry is None:
            log.warning(
                "table %s: the server deleted a row the client does not have: %r", self.schema.name, row
            )
            return
        if entry[1] > count:
            entry[1] -= count
            return
        del self.rows[key]
        for index in self.indexes.values():
            index.remove(key, entry[0])
        pending.append((DELETE, self, (row,)))

    def _update(self, key: Any, row: Any, delta: int, pending: list[PendingCallback]) -> None:
        entry = self.rows.get(key)
        if entry is None:
            log.warning(
                "table %s: the server updated a row the client does not have: %r", self.schema.name, row
            )
            self._apply_keyed(INSERT, key, row, max(1, delta), pending)
            return
        old, count = entry
        if count + delta <= 0:
            log.error(
                "table %s: negative reference count for %r (%d%+d)", self.schema.name, row, count, delta
            )
            return
        for index in self.indexes.values():
            index.remove(key, old)
        self.rows[key] = [row, count + delta]
        for index in self.indexes.values():
            index.add(key, row)
        pending.append((UPDATE, self, (old, row)))
