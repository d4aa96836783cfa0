"""What a connection offers as attributes: ``conn.db`` (``RemoteTables``: a ``TableHandle`` per table, with its
index accessors), ``conn.reducers`` (``RemoteReducers``) and ``conn.procedures`` (``RemoteProcedures``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .cache import DELETE, INSERT, UPDATE, TableCache
from .errors import SchemaError
from .events import EventContext
from .pending import Pending, ReducerCall
from .schema import TableSchema

if TYPE_CHECKING:
    from .connection import DbConnection

Row = TypeVar("Row")


# ---- tables ---------------------------------------------------------------------------------------------------


class UniqueIndex(Generic[Row]):
    """An index on unique columns (the primary key, ``Unique``): ``find(value)``."""

    def __init__(self, handle: TableHandle[Row], accessor: str) -> None:
        self._handle = handle
        self._accessor = accessor

    def find(self, value: Any) -> Row | None:
        """The cached row whose column(s) equal ``value`` (a tuple for several columns), or None."""
        with self._handle._conn._lock:
            return self._handle._cache.find(self._accessor, value)  # type: ignore[no-any-return]  # the cache stores rows as Any


class BTreeIndex(Generic[Row]):
    """An index on non-unique columns: ``filter(value)`` (a prefix tuple for several columns)."""

    def __init__(self, handle: TableHandle[Row], accessor: str) -> None:
        self._handle = handle
        self._accessor = accessor

    def filter(self, value: Any) -> list[Row]:
        with self._handle._conn._lock:
            return self._handle._cache.filter(self._accessor, value)


class TableHandle(Generic[Row]):
    """The client cache of one table: read it, and register row callbacks.

    Index accessors are attributes: ``conn.db.user.identity.find(identity)``, ``conn.db.message.sent.filter(ts)``
    (also ``conn.db.user.index("identity")``). An accessor named like an attribute of the handle itself (``name``,
    ``schema``, ``count``, ``iter``, ``index``, ``on_insert``, ...) is reached with ``_index`` appended:
    ``conn.db.player.name_index.find("Ada")``, the name generated bindings give it too.
    """

    def __init__(self, conn: DbConnection, cache: TableCache) -> None:
        self._conn = conn
        self._cache = cache
        self.name = cache.schema.name
        self.schema: TableSchema = cache.schema

    def count(self) -> int:
        with self._conn._lock:
            return len(self._cache)

    def __len__(self) -> int:
        return self.count()

    def iter(self) -> Iterator[Row]:
        """The cached rows (a snapshot: safe to use while messages are being processed)."""
        with self._conn._lock:
            return iter(self._cache.snapshot())

    def __iter__(self) -> Iterator[Row]:
        return self.iter()

    def index(self, accessor: str) -> UniqueIndex[Row] | BTreeIndex[Row]:
        index = self._cache.indexes.get(accessor)
        if index is None:
            raise SchemaError(
                f"table {self.name} has no index {accessor!r} (indexes: {', '.join(self._cache.indexes) or 'none'})"
            )
        return UniqueIndex(self, accessor) if index.spec.unique else BTreeIndex(self, accessor)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            if name in self._cache.indexes:
                return self.index(name)
            # an index whose accessor an attribute of the handle hides: conn.db.player.name_index
            if name.endswith("_index") and name[: -len("_index")] in self._cache.indexes:
                return self.index(name[: -len("_index")])
        raise AttributeError(f"table {self.name} has no attribute or index {name!r}")

    def on_insert(self, callback: Callable[[EventContext, Row], None]) -> int:
        """Call ``callback(ctx, row)`` when a row enters the cache; returns an id for ``remove_on_insert``."""
        return self._cache.add_callback(INSERT, callback)

    def on_delete(self, callback: Callable[[EventContext, Row], None]) -> int:
        return self._cache.add_callback(DELETE, callback)

    def on_update(self, callback: Callable[[EventContext, Row, Row], None]) -> int:
        """Call ``callback(ctx, old, new)`` when a row is replaced by one with the same primary key (tables
        with a primary key only)."""
        if self.schema.primary_key is None:
            raise SchemaError(f"table {self.name} has no primary key, so its rows are never updated")
        return self._cache.add_callback(UPDATE, callback)

    def remove_on_insert(self, callback_id: int) -> None:
        self._cache.remove_callback(INSERT, callback_id)

    def remove_on_delete(self, callback_id: int) -> None:
        self._cache.remove_callback(DELETE, callback_id)

    def remove_on_update(self, callback_id: int) -> None:
        self._cache.remove_callback(UPDATE, callback_id)

    def __repr__(self) -> str:
        return f"<TableHandle {self.name} ({self.count()} rows)>"


class RemoteTables:
    """``conn.db``: one ``TableHandle`` per table, as attributes (``conn.db.user``) or ``conn.db.table("user")``."""

    # generated bindings: table name -> their typed TableHandle subclass
    HANDLE_CLASSES: ClassVar[dict[str, type[TableHandle[Any]]]] = {}

    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn
        self._handles: dict[str, TableHandle[Any]] = {}

    def table(self, name: str) -> TableHandle[Any]:
        handle = self._handles.get(name)
        if handle is None:
            cache = self._conn._caches.get(name)
            if cache is None:
                raise SchemaError(
                    f"no table {name!r} in the module (tables: {', '.join(self._conn._caches)})"
                )
            handle_class = self.HANDLE_CLASSES.get(name, TableHandle)
            handle = self._handles[name] = handle_class(self._conn, cache)
        return handle

    def __getattr__(self, name: str) -> TableHandle[Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.table(name)
        except SchemaError as exc:
            raise AttributeError(str(exc)) from None

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._conn._caches})


# ---- reducers -------------------------------------------------------------------------------------------------


class RemoteReducers:
    """``conn.reducers``: ``conn.reducers.send_message("hi")`` calls a reducer (returns a ``ReducerCall``),
    ``conn.reducers.on_send_message(cb)`` registers ``cb(ctx, *args)`` for this client's calls of it (``ctx.event``
    is the ``ReducerEvent``: status, error text, timestamp, caller) and returns an id for
    ``remove_on_send_message``. ``call(name, ...)``, ``on(name, cb)`` and ``remove_on(name, id)`` do the same
    for any name."""

    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    def call(self, reducer: str, *args: Any, **kwargs: Any) -> ReducerCall:
        schema = self._conn.module.reducer(reducer)
        return self._conn._call_reducer(reducer, schema.bind(args, kwargs))

    def on(self, reducer: str, callback: Callable[..., None]) -> int:
        self._conn.module.reducer(reducer)
        callback_id = next(self._conn._callback_ids)
        self._conn._reducer_callbacks.setdefault(reducer, {})[callback_id] = callback
        return callback_id

    def remove_on(self, reducer: str, callback_id: int) -> None:
        self._conn._reducer_callbacks.get(reducer, {}).pop(callback_id, None)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        reducers = self._conn.module.reducers
        if name in reducers:
            return functools.partial(self.call, name)
        if name.startswith("remove_on_") and name[10:] in reducers:
            return functools.partial(self.remove_on, name[10:])
        if name.startswith("on_") and name[3:] in reducers:
            return functools.partial(self.on, name[3:])
        raise AttributeError(f"no reducer {name!r} in the module (reducers: {', '.join(reducers)})")


class RemoteProcedures:
    """``conn.procedures``: ``conn.procedures.add_two(1, 2)`` calls a procedure and returns a ``Pending`` that
    completes with its return value (``ProcedureError`` if it failed); ``call(name, ...)`` does the same for any
    name."""

    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    def call(self, procedure: str, *args: Any, **kwargs: Any) -> Pending[Any]:
        return self._conn.call_procedure(procedure, *args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        procedures = self._conn.module.procedures
        if not name.startswith("_") and name in procedures:
            return functools.partial(self.call, name)
        raise AttributeError(f"no procedure {name!r} in the module (procedures: {', '.join(procedures)})")
