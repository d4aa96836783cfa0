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
    DecodeError,
    EncodeError,
    Identity,
    ProductType,
    Timestamp,
    codec,
)
from spacetimedb.sats.json import json_codec

from .context import INTERNAL_AUTH, AuthCtx, ReducerContext
from .errors import ModuleError, NoSuchReducerError, ReducerArgsError
from .index_handles import IndexHandle, UniqueIndexHandle, row_error, wrong_class
from .moduledef import ModuleDef, ProcedureDef, ReducerDef, TableDef
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


# ---- arguments ---------------------------------------------------------------------------------------------------


class _ReducerCall:
    """A reducer (or a procedure) with its argument codecs, ready to be called."""

    __slots__ = ("arg_codecs", "arg_json", "converters", "func", "kind", "name", "params_codec", "reducer")

    def __init__(self, reducer: ReducerDef | ProcedureDef, module: ModuleDef) -> None:
        typespace = module.typespace
        self.kind = "procedure" if isinstance(reducer, ProcedureDef) else "reducer"
        self.reducer = reducer
        self.name = reducer.name
        self.func = reducer.func
        self.params_codec = codec(reducer.params, typespace)
        self.arg_codecs = tuple(codec(e.type, typespace) for e in reducer.params.elements)
        self.arg_json = tuple(json_codec(e.type, typespace) for e in reducer.params.elements)
        converters = reducer.arg_from_canonical
        self.converters = converters if any(c is not None for c in converters) else None

    def decode_bsatn(self, data: bytes | bytearray | memoryview) -> tuple[Any, ...]:
        try:
            return self.params_codec.decode(data)  # type: ignore[no-any-return]  # codecs decode to Any; a product type decodes to a tuple
        except DecodeError:
            pass
        # decode argument by argument to name the one at fault
        pos = 0
        for name, arg_codec in zip(self.reducer.arg_names, self.arg_codecs, strict=True):
            try:
                _, pos = arg_codec.decode_from(data, pos)
            except DecodeError as exc:
                raise ReducerArgsError(self.name, str(exc), name, self.kind) from None
        raise ReducerArgsError(
            self.name, f"{len(data) - pos} unexpected byte(s) after the last argument", kind=self.kind
        )

    def decode_json(self, args: Any) -> tuple[Any, ...]:
        names = self.reducer.arg_names
        if isinstance(args, dict):
            unknown = sorted(set(args) - set(names))
            if unknown:
                # repr: a name from the caller's JSON may hold lone surrogates, which no message can carry
                raise ReducerArgsError(
                    self.name, f"unknown argument(s) {', '.join(map(repr, unknown))}", kind=self.kind
                )
            missing = [n for n in names if n not in args]
            if missing:
                raise ReducerArgsError(self.name, f"missing argument(s) {', '.join(missing)}", kind=self.kind)
            items = [args[n] for n in names]
        elif isinstance(args, list):
            if len(args) != len(names):
                raise ReducerArgsError(
                    self.name, f"expected {len(names)} argument(s), got {len(args)}", kind=self.kind
                )
            items = args
        else:
            raise ReducerArgsError(
                self.name,
                f"arguments must be a JSON array or object, got {type(args).__name__}",
                kind=self.kind,
            )
        values = []
        for name, item, arg_json in zip(names, items, self.arg_json, strict=True):
            try:
                values.append(arg_json.from_json(item))
            except DecodeError as exc:
                raise ReducerArgsError(self.name, str(exc), name, self.kind) from None
        return tuple(values)

    def encode_bsatn(self, args: tuple[Any, ...]) -> bytes:
        try:
            return self.params_codec.encode(args)
        except EncodeError as exc:
            raise ReducerArgsError(self.name, str(exc), kind=self.kind) from None

    def call(self, ctx: ReducerContext[Any], args: tuple[Any, ...]) -> Any:
        converters = self.converters
        if converters is None:
            return self.func(ctx, *args)
        converted = [v if c is None else c(v) for c, v in zip(converters, args, strict=True)]
        return self.func(ctx, *converted)


class ProcedureCall(_ReducerCall):
    """A procedure with its argument and return value codecs."""

    __slots__ = ("procedure", "return_codec", "return_json", "to_canonical")

    def __init__(self, procedure: ProcedureDef, module: ModuleDef) -> None:
        super().__init__(procedure, module)
        self.procedure = procedure
        self.return_codec = codec(procedure.return_type, module.typespace)
        self.return_json = json_codec(procedure.return_type, module.typespace)
        self.to_canonical = procedure.return_to_canonical

    def canonical_return(self, value: Any) -> Any:
        """The canonical form of what the procedure returned; ``TypeError`` says why it does not fit."""
        if isinstance(self.procedure.return_type, ProductType) and not self.procedure.return_type.elements:
            if value is not None and value != ():
                raise TypeError(f"procedure `{self.name}` is declared `-> None` but returned {value!r}")
            return ()
        try:
            canonical = self.to_canonical(value) if self.to_canonical is not None else value
            self.return_codec.encode(canonical)  # checks it fits
        except (EncodeError, ValueError, TypeError, AttributeError) as exc:
            raise TypeError(
                f"procedure `{self.name}` returned {value!r}, which does not fit its return type: {exc}"
            ) from None
        return canonical

    def encode_return(self, canonical: Any) -> bytes:
        return self.return_codec.encode(canonical)

    def return_to_json(self, canonical: Any) -> Any:
        return self.return_json.to_json(canonical)

    def return_to_json_untyped(self, canonical: Any) -> Any:
        """The form of upstream's ``POST /call`` answer: products as arrays (``["World"]``)."""
        return self.return_json.to_json_untyped(canonical)


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
        self._calls = {name: _ReducerCall(r, module_def) for name, r in module_def.reducers.items()}
        # what ``reducer_call`` looks in, by name, for a host's hot path (read it, never change it)
        self.reducer_calls: dict[str, _ReducerCall] = self._calls
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

    def _call(self, reducer: str | ReducerDef) -> _ReducerCall:
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

    def reducer_call(self, reducer: str | ReducerDef) -> _ReducerCall:
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
        self.slot.tx = tx
        if connection_id is not None and connection_id.value == 0:
            connection_id = None
        return ReducerContext(sender, connection_id, timestamp, self.db, database_identity, sender_auth)

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
