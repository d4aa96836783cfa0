"""The objects reducers use at run time: ``ctx.db.<table>`` handles over the current transaction.

A ``ModuleRuntime`` is built once per loaded module. It creates every handle once; handles read the current
transaction from one shared slot, which ``begin_call`` sets and ``end_call`` clears, so a reducer call costs one
``ReducerContext`` and nothing per table. ``bind`` resolves table and index ids by name (again after any schema
change: a migration can give a table a new id).

Typical host use::

    runtime = ModuleRuntime(loaded.module_def)
    runtime.bind(tx)                                   # any open transaction of the database
    args = runtime.decode_args("send_message", bsatn)  # or decode_json_args(...)
    runtime.invoke("send_message", tx, sender, connection_id, timestamp, database_identity, args)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from spacetimedb.datastore import MutTx, ReadTx
from spacetimedb.sats import (
    ConnectionId,
    EncodeError,
    Identity,
    Timestamp,
)

from .calls import ProcedureCall, ReducerFunction, begin_reducer_call
from .context import INTERNAL_AUTH, AuthCtx, ReducerContext
from .errors import ModuleError, NoSuchReducerError
from .index_handles import IndexHandle, UniqueIndexHandle, row_error, wrong_class
from .moduledef import ModuleDef, ReducerDef, TableDef
from .slots import NO_TX, TxSlot

Row = tuple[Any, ...]


# ---- handles ------------------------------------------------------------------------------------------------


class TableHandle:
    """``ctx.db.<table>``: insert, delete, iterate and count rows; indexes are attributes (``.<accessor>``)."""

    __slots__ = ("_def", "_from_tuple", "_row_class", "_slot", "_table_id", "_to_tuple")

    def __init__(self, table: TableDef, slot: TxSlot) -> None:
        info = table.row_class.__stdb_record__  # type: ignore[attr-defined]  # set on record classes by @table (records.py)
        self._def = table
        self._slot = slot
        self._table_id = -1
        self._row_class = table.row_class
        self._to_tuple: Callable[[Any], Row] = info.to_tuple
        self._from_tuple: Callable[[Row], Any] = info.from_tuple

    def _values(self, row: Any) -> Row:
        if row.__class__ is not self._row_class:
            raise wrong_class(self._def, row)
        try:
            return self._to_tuple(row)
        except Exception as exc:
            raise row_error(self._def, row, exc) from None

    def insert(self, row: Any) -> Any:
        """Insert ``row``; returns the row as stored (auto-increment columns given as 0 filled in)."""
        values = self._values(row)
        try:
            stored = self._slot.tx.insert(self._table_id, values)
        except EncodeError as exc:
            raise row_error(self._def, values, exc) from None
        return self._from_tuple(stored)

    def delete(self, row: Any) -> bool:
        """Delete the row equal to ``row``; False if there is none."""
        return self._slot.tx.delete(self._table_id, self._values(row))  # type: ignore[no-any-return]  # the slot's transaction is typed Any (it may be the no-tx sentinel)

    def iter(self) -> Iterator[Any]:
        """Every row (a snapshot: deleting while iterating is fine)."""
        return map(self._from_tuple, self._slot.tx.scan(self._table_id))

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    def count(self) -> int:
        return self._slot.tx.count(self._table_id)  # type: ignore[no-any-return]  # the slot's transaction is typed Any (it may be the no-tx sentinel)

    def __repr__(self) -> str:
        return f"<table {self._def.name}>"

    def __getattr__(self, name: str) -> Any:
        # only reached for a name the handle lacks: say what the author probably wanted
        table = self._def
        if name.startswith("_"):
            raise AttributeError(name)
        unique = [i.accessor_name for i in table.indexes if i.unique]
        if name in ("update", "find"):
            if unique:
                via = " or ".join(f"ctx.db.{table.name}.{accessor}.{name}(...)" for accessor in unique)
                raise AttributeError(f"table `{table.name}` has no {name}(); use its unique index: {via}")
            raise AttributeError(
                f"table `{table.name}` has no primary key or unique column, so its rows cannot be "
                f"{'updated' if name == 'update' else 'found'} by key: {name}() needs a column marked "
                "PrimaryKey or Unique (or delete the old row and insert the new one)"
            )
        indexes = ", ".join(i.accessor_name for i in table.indexes) or "none"
        raise AttributeError(
            f"table `{table.name}` has no attribute or index `{name}` (its indexes: {indexes}; "
            "methods: insert, delete, iter, count)"
        )


class _Db:
    """Base of the per-module ``ctx.db`` class, whose slots are the table names."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<db: {', '.join(self.__slots__)}>"


def _make_handle_class(table: TableDef) -> type[TableHandle]:
    accessors = tuple(index.accessor_name for index in table.indexes)
    return type(f"{table.type_name}Handle", (TableHandle,), {"__slots__": accessors})


# ---- the runtime --------------------------------------------------------------------------------------------------


class ModuleRuntime:
    """A module's table handles and reducers, bound to one database."""

    def __init__(self, module: ModuleDef | Any, slot: TxSlot | None = None) -> None:
        module_def = getattr(module, "module_def", module)  # a LoadedModule or a ModuleDef
        if not isinstance(module_def, ModuleDef):
            raise TypeError(f"ModuleRuntime needs a ModuleDef or LoadedModule, got {type(module).__name__}")
        self.module_def: ModuleDef = module_def
        # a foreign module's syscalls read the transaction from slots it made (host.foreign): share them
        self.slot = slot if slot is not None else getattr(module, "tx_slot", None) or TxSlot()
        self.tables: dict[str, TableHandle] = {}
        self._indexes: list[tuple[TableHandle, IndexHandle]] = []
        self.db = self._make_db(self.slot, self.tables)
        # views read through handles of their own, whose transaction refuses writes (see ``views.call_view``)
        self.view_slot = getattr(module, "view_slot", None) or TxSlot()
        self._view_tables: dict[str, TableHandle] = {}
        self.view_db = self._make_db(self.view_slot, self._view_tables) if module_def.views else None
        self._calls = {name: ReducerFunction(r, module_def) for name, r in module_def.reducers.items()}
        # what ``reducer_call`` looks in, by name, for a host's hot path (read it, never change it)
        self.reducer_calls: dict[str, ReducerFunction] = self._calls
        self._procedures = {name: ProcedureCall(p, module_def) for name, p in module_def.procedures.items()}
        self.bound = False

    def _make_db(self, slot: TxSlot, tables: dict[str, TableHandle]) -> Any:
        accessors = tuple(table.accessor_name for table in self.module_def.tables.values())
        db_class = type("Db", (_Db,), {"__slots__": accessors})
        db = db_class()
        for table in self.module_def.tables.values():
            handle = self._make_table_handle(table, slot)
            tables[table.name] = handle
            setattr(db, table.accessor_name, handle)
        return db

    def _make_table_handle(self, table: TableDef, slot: TxSlot) -> TableHandle:
        handle = _make_handle_class(table)(table, slot)
        for index in table.indexes:
            if index.unique and len(index.columns) == 1:
                index_handle: IndexHandle = UniqueIndexHandle(table, index, slot)
            else:
                index_handle = IndexHandle(table, index, slot)
            setattr(handle, index.accessor_name, index_handle)
            self._indexes.append((handle, index_handle))
        return handle

    # -- binding ----------------------------------------------------------------------------------------------

    def bind(self, tx: MutTx | ReadTx) -> None:
        """Resolve table and index ids by name in the database ``tx`` belongs to, and check that its tables have
        the module's columns. Call again after a migration."""
        for name, handle in self.tables.items():
            table_id = tx.table_id(name)
            if table_id is None:
                raise ModuleError(f"table `{name}` of the module does not exist in the database")
            schema = tx.schema(table_id)
            expected = handle._def.row_type
            if schema.row_type != expected:
                raise ModuleError(
                    f"table `{name}` in the database has columns {schema.row_type!r}, the module expects {expected!r}"
                )
            handle._table_id = table_id
            view_handle = self._view_tables.get(name)
            if view_handle is not None:
                view_handle._table_id = table_id
        for handle, index_handle in self._indexes:
            schema = tx.schema(handle._table_id)
            found = schema.index_named(index_handle._def.name)
            if found is None:
                raise ModuleError(
                    f"index `{index_handle._def.name}` of the module does not exist in the database"
                )
            index_handle._table_id = handle._table_id
            index_handle._index_id = found.index_id
        self.bound = True

    def table_id(self, name: str) -> int:
        """The datastore id of a module table (after ``bind``)."""
        return self.tables[name]._table_id

    # -- reducers ---------------------------------------------------------------------------------------------

    def reducer(self, name: str) -> ReducerDef:
        call = self._calls.get(name)
        if call is None:
            raise NoSuchReducerError(name)
        assert isinstance(call.reducer, ReducerDef)  # _calls holds reducers; procedures are in _procedures
        return call.reducer

    def _call(self, reducer: str | ReducerDef) -> ReducerFunction:
        name = reducer if isinstance(reducer, str) else reducer.name
        call = self._calls.get(name)
        if call is None:
            raise NoSuchReducerError(name)
        return call

    def procedure_call(self, name: str) -> ProcedureCall:
        call = self._procedures.get(name)
        if call is None:
            raise NoSuchReducerError(name, "procedure")
        return call

    def reducer_call(self, reducer: str | ReducerDef) -> ReducerFunction:
        """What calls ``reducer`` with canonical arguments (``.call(ctx, args)``), for a host's hot path."""
        return self._call(reducer)

    def decode_args(self, reducer: str | ReducerDef, data: bytes | bytearray | memoryview) -> tuple[Any, ...]:
        """Canonical argument values from the BSATN of the reducer's parameter product; ``ReducerArgsError``
        names the reducer and the argument on failure."""
        return self._call(reducer).decode_bsatn(data)

    def decode_json_args(self, reducer: str | ReducerDef, args: Any) -> tuple[Any, ...]:
        """Canonical argument values from parsed JSON: an array (positional) or an object (by name)."""
        return self._call(reducer).decode_json(args)

    def encode_args(self, reducer: str | ReducerDef, args: tuple[Any, ...]) -> bytes:
        """BSATN of canonical argument values (what the commitlog records as the reducer's input)."""
        return self._call(reducer).encode_bsatn(args)

    def begin_call(
        self,
        tx: MutTx,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        database_identity: Identity,
        sender_auth: AuthCtx = INTERNAL_AUTH,
    ) -> ReducerContext[Any]:
        """Point the handles at ``tx`` and make the context of one call; finish with ``end_call``."""
        return begin_reducer_call(
            self.slot, tx, sender, connection_id, timestamp, self.db, database_identity, sender_auth
        )

    # the name in the host-facing brief
    make_context = begin_call

    def end_call(self) -> None:
        self.slot.tx = NO_TX

    def end_view_call(self) -> None:
        self.view_slot.tx = NO_TX

    def call(self, reducer: str | ReducerDef, ctx: ReducerContext[Any], args: tuple[Any, ...]) -> Any:
        """Run a reducer with canonical arguments inside a call started by ``begin_call``; exceptions propagate
        (the host rolls back and reports ``str(exc)``)."""
        return self._call(reducer).call(ctx, args)

    def invoke(
        self,
        reducer: str | ReducerDef,
        tx: MutTx,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        database_identity: Identity,
        args: tuple[Any, ...] = (),
    ) -> Any:
        """``begin_call`` + ``call`` + ``end_call``; the caller commits or rolls back ``tx``."""
        call = self._call(reducer)
        ctx = self.begin_call(tx, sender, connection_id, timestamp, database_identity)
        try:
            return call.call(ctx, args)
        finally:
            self.slot.tx = NO_TX
