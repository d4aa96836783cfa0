"""The decorators a module is written with: ``@table``, ``@reducer``, ``@type``, ``client_visibility_filter``.

Decorators only *record* declarations in the registry of the module being loaded (``current_registry``); the
module definition is built and validated once the whole program has been imported (``builder``), because
annotations may refer to classes declared further down.
"""

from __future__ import annotations

import builtins
import enum
import sys
import types as pytypes
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, Union, dataclass_transform, get_args, get_origin, overload

from .errors import ModuleError
from .markers import IndexSpec
from .records import make_record_class

if TYPE_CHECKING:
    from .handlers import HandlerDecl, RouterDecl
    from .views import ViewDecl

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

LIFECYCLES = ("init", "client_connected", "client_disconnected")


@dataclass(slots=True)
class TableDecl:
    cls: type
    name: str | None
    public: bool
    indexes: list[IndexSpec]
    scheduled: str | None
    location: str
    event: bool = False
    scheduled_at: str | None = None  # the ScheduleAt column's name, when the table says which
    accessor: str | None = None  # ctx.db.<accessor>, when it differs from the name


@dataclass(slots=True)
class ReducerDecl:
    func: Callable[..., Any]
    name: str
    lifecycle: str | None
    location: str


@dataclass(slots=True)
class ProcedureDecl:
    func: Callable[..., Any]
    name: str
    location: str


@dataclass(slots=True)
class SumDecl:
    """A named sum declared as a union of variant classes: ``Shape = type("Shape", Circle | Square)``."""

    name: str
    variants: tuple[type, ...]
    location: str


@dataclass(slots=True)
class TypeDecl:
    """A class decorated ``@type`` (a product record, or an ``enum.Enum``), with its exported name."""

    cls: type
    name: str
    location: str


@dataclass(frozen=True, slots=True)
class RowLevelSecurity:
    """A row-level security rule (``client_visibility_filter``): an SQL query over one table."""

    sql: str
    location: str = ""


@dataclass(slots=True)
class Registry:
    """Everything one module program declared, in declaration order."""

    tables: list[TableDecl] = field(default_factory=list)
    reducers: list[ReducerDecl] = field(default_factory=list)
    procedures: list[ProcedureDecl] = field(default_factory=list)
    types: list[TypeDecl] = field(default_factory=list)
    sums: list[SumDecl] = field(default_factory=list)
    row_level_security: list[RowLevelSecurity] = field(default_factory=list)
    views: list[ViewDecl] = field(default_factory=list)
    http_handlers: list[HandlerDecl] = field(default_factory=list)
    http_routers: list[RouterDecl] = field(default_factory=list)
    # maps a code object's file name to the name shown in messages (set by the loader)
    display_path: Callable[[str], str] = field(default=lambda path: path)

    def sum_named_for(self, variants: tuple[Any, ...]) -> SumDecl | None:
        for decl in self.sums:
            if decl.variants == variants:
                return decl
        return None

    def type_decl(self, cls: builtins.type) -> TypeDecl | None:
        for decl in self.types:
            if decl.cls is cls:
                return decl
        return None


_DEFAULT_REGISTRY = Registry()
_current: ContextVar[Registry | None] = ContextVar("spacetimedb_module_registry", default=None)


def current_registry() -> Registry:
    """The registry of the module being loaded on this thread, or the process-wide default one."""
    registry = _current.get()
    return registry if registry is not None else _DEFAULT_REGISTRY


def default_registry() -> Registry:
    return _DEFAULT_REGISTRY


def activate_registry(registry: Registry | None) -> Any:
    """Make ``registry`` receive declarations on this thread; returns a token for ``deactivate_registry``."""
    return _current.set(registry)


def deactivate_registry(token: Any) -> None:
    _current.reset(token)


def _location(depth: int) -> str:
    frame = sys._getframe(depth + 1)
    return f"{current_registry().display_path(frame.f_code.co_filename)}:{frame.f_lineno}"


# ---- @table -------------------------------------------------------------------------------------------------


@overload
def table(cls: builtins.type[T], /) -> builtins.type[T]: ...


@overload
def table(
    *,
    name: str | None = None,
    accessor: str | None = None,
    public: bool = False,
    indexes: Iterable[IndexSpec] = (),
    scheduled: str | Callable[..., Any] | None = None,
    scheduled_at: str | None = None,
    event: bool = False,
) -> Callable[[builtins.type[T]], builtins.type[T]]: ...


# dataclass_transform: type checkers then know a record's constructor. Keyword-only for them, because a field
# without a default may follow one with a default (a column added by a migration), which only keywords can pass.
@dataclass_transform(kw_only_default=True)
def table(
    cls: builtins.type[T] | None = None,
    /,
    *,
    name: str | None = None,
    accessor: str | None = None,
    public: bool = False,
    indexes: Iterable[IndexSpec] = (),
    scheduled: str | Callable[..., Any] | None = None,
    scheduled_at: str | None = None,
    event: bool = False,
) -> Any:
    """Declare a table whose rows are instances of the decorated class (see docs/module-api.md).

    ``name`` defaults to the class name in snake_case (``accessor``, if given, names ``ctx.db.<accessor>``
    instead; SQL accepts both); ``public`` tables are visible to every client;
    ``indexes`` takes ``Index.btree(...)`` / ``Index.hash(...)`` declarations; ``scheduled`` names the reducer
    that rows of this table schedule (its rows need a ``u64`` primary key and a ``ScheduleAt`` column, which
    ``scheduled_at`` names when there are several); ``event`` tables never store rows: what a transaction inserts
    goes to their subscribers when it commits, and is gone.
    """
    location = _location(1)
    index_list = list(indexes)
    for spec in index_list:
        if not isinstance(spec, IndexSpec) or not spec.columns:
            raise ModuleError(
                f"@table at {location}: indexes= takes Index.btree('col', ...) declarations, got {spec!r}"
            )
    scheduled_name = _reducer_name_of(scheduled, location)
    if scheduled_at is not None and (scheduled is None or not isinstance(scheduled_at, str)):
        raise ModuleError(
            f"@table at {location}: scheduled_at= names the ScheduleAt column of a scheduled table "
            f"(with scheduled=...), got {scheduled_at!r}"
        )
    for option, value in (("name", name), ("accessor", accessor)):
        if value is not None and not isinstance(value, str):
            raise ModuleError(f"@table at {location}: {option} must be a str, got {value!r}")

    def decorate(klass: builtins.type[T]) -> builtins.type[T]:
        record = make_record_class(klass, "table")
        current_registry().tables.append(
            TableDecl(
                record,
                name,
                bool(public),
                index_list,
                scheduled_name,
                location,
                bool(event),
                scheduled_at,
                accessor,
            )
        )
        return record

    return decorate(cls) if cls is not None else decorate


def _reducer_name_of(scheduled: str | Callable[..., Any] | None, location: str) -> str | None:
    if scheduled is None or isinstance(scheduled, str):
        return scheduled
    decl = getattr(scheduled, "__stdb_reducer__", None)
    if isinstance(decl, ReducerDecl):
        return decl.name
    if callable(scheduled) and hasattr(scheduled, "__name__"):
        return str(scheduled.__name__)
    raise ModuleError(f"@table at {location}: scheduled= takes a reducer name, got {scheduled!r}")


# ---- @reducer -----------------------------------------------------------------------------------------------


@overload
def reducer(func: F, /) -> F: ...


@overload
def reducer(*, name: str | None = None, lifecycle: str | None = None) -> Callable[[F], F]: ...


def reducer(func: F | None = None, /, *, name: str | None = None, lifecycle: str | None = None) -> Any:
    """Declare a reducer: ``def r(ctx: ReducerContext, arg: T, ...) -> None``.

    ``lifecycle`` is ``"init"``, ``"client_connected"`` or ``"client_disconnected"`` for lifecycle reducers.
    """
    location = _location(1)
    if lifecycle is not None and lifecycle not in LIFECYCLES:
        raise ModuleError(
            f"@reducer at {location}: unknown lifecycle {lifecycle!r} (expected one of {', '.join(LIFECYCLES)})"
        )

    def decorate(fn: F) -> F:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise ModuleError(f"@reducer at {location}: decorates a function, got {fn!r}")
        decl = ReducerDecl(fn, name or fn.__name__, lifecycle, location)
        fn.__stdb_reducer__ = decl  # type: ignore[attr-defined]  # marks the reducer function for the module loader
        current_registry().reducers.append(decl)
        return fn

    return decorate(func) if func is not None else decorate


# ---- @procedure ---------------------------------------------------------------------------------------------


@overload
def procedure(func: F, /) -> F: ...


@overload
def procedure(*, name: str | None = None) -> Callable[[F], F]: ...


def procedure(func: F | None = None, /, *, name: str | None = None) -> Any:
    """Declare a procedure: ``def p(ctx: ProcedureContext, arg: T, ...) -> R``.

    A procedure runs outside any transaction (``ctx.with_tx(fn)`` opens one), may make HTTP requests
    (``ctx.http``), and returns a value of its declared return type to its caller only.
    """
    location = _location(1)

    def decorate(fn: F) -> F:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise ModuleError(f"@procedure at {location}: decorates a function, got {fn!r}")
        current_registry().procedures.append(ProcedureDecl(fn, name or fn.__name__, location))
        return fn

    return decorate(func) if func is not None else decorate


# ---- @type --------------------------------------------------------------------------------------------------


@dataclass_transform(kw_only_default=True)
def type(cls_or_name: Any = None, variants: Any = None, /, *, name: str | None = None) -> Any:
    """Declare a user type.

    - ``@type`` on a class: a product type (a record with the class's annotated fields);
    - ``@type`` on an ``enum.Enum``: a sum of unit variants (optional: plain enums work as well);
    - ``Shape = type("Shape", Circle | Square)``: a named sum whose variants are ``@type`` classes; use ``Shape``
      (or the same union) in annotations, and instances of the variant classes as values.
    - ``@type(name="Exported")`` renames the type as clients see it.
    """
    location = _location(1)
    if isinstance(cls_or_name, str):
        return _declare_sum(cls_or_name, variants, location)
    if variants is not None:
        raise ModuleError(f"type() at {location}: expected type('Name', A | B), got {cls_or_name!r}")

    def decorate(klass: Any) -> Any:
        if not isinstance(klass, builtins.type):
            raise ModuleError(f"@type at {location}: decorates a class, got {klass!r}")
        exported = name or klass.__name__
        if issubclass(klass, enum.Enum):
            current_registry().types.append(TypeDecl(klass, exported, location))
            return klass
        record = make_record_class(klass, "type")
        current_registry().types.append(TypeDecl(record, exported, location))
        return record

    return decorate(cls_or_name) if cls_or_name is not None else decorate


def _declare_sum(name: str, union: Any, location: str) -> Any:
    if get_origin(union) not in (Union, pytypes.UnionType):
        raise ModuleError(f"type({name!r}, ...) at {location}: expected a union of @type classes like A | B")
    members = get_args(union)
    current_registry().sums.append(SumDecl(name, tuple(members), location))
    return union


# ---- row-level security -------------------------------------------------------------------------------------


def client_visibility_filter(sql: str) -> RowLevelSecurity:
    """Declare a row-level security rule: clients other than the owner see only the rows the query returns.

    ``sql`` is ``SELECT <table>.* FROM <table> [JOIN ...] WHERE ...`` and may use ``:sender``.
    """
    location = _location(1)
    if not isinstance(sql, str) or not sql.strip():
        raise ModuleError(
            f"client_visibility_filter at {location}: expected an SQL query string, got {sql!r}"
        )
    rule = RowLevelSecurity(sql.strip(), location)
    current_registry().row_level_security.append(rule)
    return rule


# ---- views --------------------------------------------------------------------------------------------------


def view(
    func: F | None = None, /, *, name: str | None = None, public: bool = False, primary_key: str | None = None
) -> Any:
    """Declare a per-caller view: ``def v(ctx: ViewContext) -> Row | Optional[Row] | list[Row]``, read-only,
    subscribed to and queried like a table named after the function. ``public`` as for tables; ``primary_key``
    names the column that identifies a row, so clients see a changed row as an update."""
    location = _location(1)

    def decorate(fn: F) -> F:
        from .views import declare_view  # views map types, and the type mapper reads this module

        current_registry().views.append(declare_view(fn, name, public, False, location, primary_key))
        return fn

    return decorate(func) if func is not None else decorate


def anonymous_view(
    func: F | None = None, /, *, name: str | None = None, public: bool = False, primary_key: str | None = None
) -> Any:
    """Declare a view whose result is the same for every caller: ``def v(ctx: AnonymousViewContext) -> ...``."""
    location = _location(1)

    def decorate(fn: F) -> F:
        from .views import declare_view

        current_registry().views.append(declare_view(fn, name, public, True, location, primary_key))
        return fn

    return decorate(func) if func is not None else decorate
