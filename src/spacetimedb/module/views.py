"""Views: read-only functions of the database whose results clients subscribe to like tables.

``@view`` functions take a ``ViewContext`` (the caller's identity is ``ctx.sender``, so each caller gets its own
result); ``@anonymous_view`` functions take an ``AnonymousViewContext`` (one result shared by every caller).
Both return one row, ``Optional[Row]`` or ``list[Row]``, where ``Row`` is a ``@table`` or ``@type`` class. A
view's name is its function's name.

This file owns what the module layer knows of views: their declarations (``ViewDecl``), their validation into
a ``ViewDef`` (``build_view``), their contexts, the read-only transaction their ``ctx.db`` goes through
(``ReadOnlyTx``, which also records which tables a view read) and ``call_view``, which runs one and returns its
rows as canonical tuples. Keeping results live is the host's business (``spacetimedb.host.views``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from spacetimedb.sats import AlgebraicType, ArrayType, Identity, ProductType, RefType, option

from .context import NO_JWT, AuthCtx
from .errors import ModuleError
from .records import record_info
from .typemap import TypeMapper, TypeMappingError, describe, type_hints

Row = tuple[Any, ...]
ONE, OPTIONAL, LIST = "one", "optional", "list"


class ViewError(Exception):
    """A view failed: it raised, wrote to the database or returned something that is not its declared type."""


class ReadOnlyError(ViewError):
    """A view tried to write through ``ctx.db``."""


class ViewContext:
    """What a ``@view`` gets: ``sender`` (the identity of the caller whose result this is), ``identity`` (the
    database's own identity), ``db``, the module's tables, read-only, and ``sender_auth``, the credentials of the
    caller's most recent connection (one result serves all of a caller's connections)."""

    __slots__ = ("db", "identity", "sender", "sender_auth")

    def __init__(self, sender: Identity, db: Any, identity: Identity, sender_auth: AuthCtx = NO_JWT) -> None:
        self.sender = sender
        self.db = db
        self.identity = identity
        self.sender_auth = sender_auth

    def __repr__(self) -> str:
        return f"ViewContext(sender={self.sender!r})"


class AnonymousViewContext:
    """What an ``@anonymous_view`` gets: ``db``, the module's tables, read-only, and ``identity`` (the
    database's own identity). No caller: the result is the same for everyone."""

    __slots__ = ("db", "identity")

    def __init__(self, db: Any, identity: Identity) -> None:
        self.db = db
        self.identity = identity

    def __repr__(self) -> str:
        return "AnonymousViewContext()"


@dataclass(slots=True)
class ViewDecl:
    func: Callable[..., Any]
    name: str
    public: bool
    anonymous: bool
    location: str
    primary_key: str | None = None  # the column's name


@dataclass(eq=False, slots=True)
class ViewDef:
    name: str
    index: int  # its position among the module's views (RawModuleDef's `index`)
    func: Callable[..., Any]
    public: bool
    anonymous: bool
    shape: str  # ONE, OPTIONAL or LIST
    row_ref: int  # the row's product type in the module typespace
    row_type: ProductType  # the row's columns, refs inlined
    row_class: type
    row_to_canonical: Callable[[Any], Row]
    location: str = ""
    # what a foreign program calls the view by (SpacetimeDB numbers anonymous and per-caller views apart, so
    # two views may share it); -1: ``index``
    call_id: int = -1
    # the position of the column that identifies a row across results (upstream's view primary key): clients
    # pair a deleted and an inserted row with the same key into an update; None: rows are whole values
    primary_key: int | None = None

    @property
    def primary_key_name(self) -> str | None:
        if self.primary_key is None:
            return None
        return self.row_type.elements[self.primary_key].name

    @property
    def return_type(self) -> AlgebraicType:
        """As RawModuleDef declares it: ``Array(Ref)`` for a list, ``Option(Ref)`` for one or an optional row."""
        ref = RefType(self.row_ref)
        return ArrayType(ref) if self.shape == LIST else option(ref)

    @property
    def context_name(self) -> str:
        return "AnonymousViewContext" if self.anonymous else "ViewContext"


# ---- declaring ------------------------------------------------------------------------------------------------


def declare_view(
    func: Any,
    name: str | None,
    public: bool,
    anonymous: bool,
    location: str,
    primary_key: str | None = None,
) -> ViewDecl:
    decorator = "@anonymous_view" if anonymous else "@view"
    if not callable(func) or not hasattr(func, "__code__"):
        raise ModuleError(f"{decorator} at {location}: decorates a function, got {func!r}")
    if name is not None and not isinstance(name, str):
        raise ModuleError(f"{decorator} at {location}: name must be a str, got {name!r}")
    if primary_key is not None and (not isinstance(primary_key, str) or not primary_key):
        raise ModuleError(
            f"{decorator} at {location}: primary_key must be the name of one column of its rows, got {primary_key!r}"
        )
    return ViewDecl(func, name or func.__name__, bool(public), anonymous, location, primary_key)


def primary_key_position(row_type: ProductType, column: str) -> int:
    """The position of ``column`` among a view's columns; ``ValueError`` naming the columns if it is not one."""
    names = [element.name for element in row_type.elements]
    if column not in names:
        listed = ", ".join(f"`{n}`" for n in names)
        raise ValueError(f"its primary key `{column}` is not a column of its rows (they are {listed})")
    return names.index(column)


# ---- validating -----------------------------------------------------------------------------------------------


def build_view(decl: ViewDecl, index: int, mapper: TypeMapper) -> ViewDef:
    """The definition of a declared view; raises ``ValueError`` with the problem (the builder says where)."""
    expected = AnonymousViewContext if decl.anonymous else ViewContext
    other = ViewContext if decl.anonymous else AnonymousViewContext
    try:
        params = list(inspect.signature(decl.func).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read its signature: {exc}") from None
    try:
        hints = type_hints(decl.func)
    except TypeMappingError as exc:
        raise ValueError(str(exc)) from None
    if not params:
        raise ValueError(f"the first parameter must be the context (ctx: {expected.__name__})")
    first = hints.get(params[0].name)
    if first is other:
        raise ValueError(
            f"`{params[0].name}` is annotated {other.__name__}, but {'an @anonymous_view' if decl.anonymous else 'a @view'}"
            f" takes {expected.__name__} (use {'@view' if decl.anonymous else '@anonymous_view'} for {other.__name__})"
        )
    if first is not None and first is not expected:
        raise ValueError(
            f"the first parameter must be the {expected.__name__}, but `{params[0].name}` is annotated {describe(first)}"
        )
    if len(params) > 1:
        extra = ", ".join(f"`{p.name}`" for p in params[1:])
        raise ValueError(f"a view takes only its context (ctx: {expected.__name__}); remove {extra}")
    if "return" not in hints:
        raise ValueError("needs a return annotation: a row class, Optional[Row] or list[Row]")
    shape, row_class = _return_shape(hints["return"])
    mapped = mapper.map(row_class)
    assert isinstance(mapped.type, RefType) and mapped.to_canonical is not None
    row_type = mapper.inline(mapped.type)
    if not isinstance(row_type, ProductType) or not row_type.elements:
        raise ValueError(f"{row_class.__name__} has no fields: a view's rows need at least one column")
    primary_key = None if decl.primary_key is None else primary_key_position(row_type, decl.primary_key)
    return ViewDef(
        name=decl.name,
        index=index,
        func=decl.func,
        public=decl.public,
        anonymous=decl.anonymous,
        shape=shape,
        row_ref=mapped.type.index,
        row_type=row_type,
        row_class=row_class,
        row_to_canonical=mapped.to_canonical,
        location=decl.location,
        primary_key=primary_key,
    )


def _return_shape(annotation: Any) -> tuple[str, type]:
    wrong = ValueError(
        f"returns {describe(annotation)}; a view returns a @table or @type class, Optional[Row] or list[Row]"
    )
    origin = get_origin(annotation)
    shape = ONE
    if origin is list:
        (annotation,) = get_args(annotation) or (None,)
        shape = LIST
    elif origin is Union or type(annotation).__name__ == "UnionType":
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1 or len(get_args(annotation)) != 2:
            raise wrong
        annotation, shape = members[0], OPTIONAL
    if not isinstance(annotation, type) or record_info(annotation) is None:
        raise wrong
    return shape, annotation


# ---- running --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadSet:
    """What a view read: whole tables (scans, counts, ranges) and single keys of indexes (``find``, ``seek``
    with a whole key) as (table id, index id, key). Its result can only change when a row of a whole table
    changes, or a row with one of those keys is inserted or deleted."""

    tables: frozenset[int] = frozenset()
    keys: frozenset[tuple[int, int, Any]] = frozenset()

    def __or__(self, other: ReadSet) -> ReadSet:
        return ReadSet(self.tables | other.tables, self.keys | other.keys)


class ReadOnlyTx:
    """The transaction a view's ``ctx.db`` goes through: reads pass on to ``tx`` and are recorded (``read_set``);
    writes raise ``ReadOnlyError``."""

    __slots__ = ("keys", "tables", "tx", "view")

    def __init__(self, tx: Any, view: str) -> None:
        self.tx = tx
        self.view = view
        self.tables: set[int] = set()
        self.keys: set[tuple[int, int, Any]] = set()

    def read_set(self) -> ReadSet:
        return ReadSet(frozenset(self.tables), frozenset(self.keys))

    def _key(self, table_id: int, index_id: int, key: Any) -> None:
        try:
            self.keys.add((table_id, index_id, key))
        except TypeError:  # an unhashable key: depend on the whole table
            self.tables.add(table_id)

    def scan(self, table_id: int) -> Any:
        self.tables.add(table_id)
        return self.tx.scan(table_id)

    def count(self, table_id: int) -> int:
        self.tables.add(table_id)
        return self.tx.count(table_id)  # type: ignore[no-any-return]  # the read transaction is typed Any (a Tx or a MutTx)

    def find(self, table_id: int, index_id: int, key: Any) -> Any:
        self._key(table_id, index_id, key)
        return self.tx.find(table_id, index_id, key)

    def seek(self, table_id: int, index_id: int, key: Any) -> Any:
        self._key(table_id, index_id, key)
        return self.tx.seek(table_id, index_id, key)

    def range(self, table_id: int, index_id: int, *bounds: Any) -> Any:
        self.tables.add(table_id)
        return self.tx.range(table_id, index_id, *bounds)

    def prefix(self, table_id: int, index_id: int, prefix: Any) -> Any:
        self.tables.add(table_id)
        return self.tx.prefix(table_id, index_id, prefix)

    def prefix_range(self, table_id: int, index_id: int, prefix: Any, *bounds: Any) -> Any:
        self.tables.add(table_id)
        return self.tx.prefix_range(table_id, index_id, prefix, *bounds)

    def _refuse(self, *_: Any) -> Any:
        raise ReadOnlyError(f"view `{self.view}` cannot write to the database: ctx.db is read-only in a view")

    insert = delete = update = delete_by_key = _refuse


def call_view(
    view: ViewDef,
    runtime: Any,
    tx: Any,
    sender: Identity | None,
    identity: Identity,
    sender_auth: AuthCtx = NO_JWT,
) -> tuple[list[Row], ReadSet]:
    """Run ``view`` over the read view ``tx`` (as ``sender``, ignored by anonymous views): its rows as
    canonical tuples and what it read. Whatever the view raises propagates."""
    reader = ReadOnlyTx(tx, view.name)
    slot = runtime.view_slot
    slot.tx = reader
    try:
        db = runtime.view_db
        if view.anonymous:
            ctx: Any = AnonymousViewContext(db, identity)
        else:
            ctx = ViewContext(sender, db, identity, sender_auth)  # type: ignore[arg-type]  # a non-anonymous view always has a sender
        # rows are taken while ctx.db is still bound: a view may return a generator that reads as it goes
        rows = _rows_of(view, view.func(ctx))
    finally:
        runtime.end_view_call()
    return rows, reader.read_set()


def _rows_of(view: ViewDef, result: Any) -> list[Row]:
    if view.shape == LIST:
        if isinstance(result, (str, bytes, dict)) or not isinstance(result, Iterable):
            raise ViewError(
                f"view `{view.name}` returned {type(result).__name__}, expected a list of {view.row_class.__name__}"
            )
        items = list(result)
    elif result is None:
        if view.shape == ONE:
            raise ViewError(
                f"view `{view.name}` returned None, but it is declared to return one {view.row_class.__name__} "
                f"(declare Optional[{view.row_class.__name__}] to return none)"
            )
        items = []
    else:
        items = [result]
    convert = view.row_to_canonical
    rows = []
    for item in items:
        try:
            rows.append(convert(item))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ViewError(
                f"view `{view.name}` returned a row that is not a {view.row_class.__name__}: {exc}"
            ) from None
    return rows
