"""HTTP handlers: module functions that answer HTTP requests at ``/v1/database/NAME/route/PATH``.

A module declares handlers with ``@handler`` (``def h(ctx: HandlerContext, request: Request) -> Response``) and
one ``@router`` function returning the ``Router`` that maps a method and an exact path to a handler. A handler
runs as a procedure does: outside any transaction (``ctx.with_tx(fn)`` opens one), on a procedure thread, under
the reducer time budget. ``match_route`` is the server's lookup: the path must equal a route's path exactly
(``/foo`` and ``/foo/`` are two routes; ``""`` is the bare ``.../route``), and the method must be the route's
or the route takes any method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from spacetimedb.sats import Identity, Timestamp

from .api import _location, current_registry
from .context import OutsideTransaction, ReducerContext, SeededRng
from .errors import ModuleError

F = TypeVar("F", bound=Callable[..., Any])

# the methods a route may name (upstream's ``Method`` enum, less CONNECT and TRACE, which no router offers)
ROUTE_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
# what a route's path may hold besides its leading `/` (upstream's rule: lowercase ASCII, digits, `-_~/`)
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_~/")
NO_SUCH_ROUTE = "Database has not registered a handler for this route"


@dataclass(frozen=True, slots=True)
class Request:
    """What a handler gets: ``method`` (upper case), ``uri`` (the full URI the client asked for, query string
    included), ``headers`` (lower-case names; repeated headers joined with ``", "``) and ``body`` (bytes)."""

    method: str
    uri: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def text(self) -> str:
        """The body decoded as UTF-8 (``UnicodeDecodeError`` if it is not)."""
        return self.body.decode("utf-8")


class Response:
    """What a handler returns: ``Response(body, status=200, headers={...})``; a ``str`` body is sent as UTF-8."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError(f"a Response body is bytes or str, got {type(body).__name__}")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"a Response status is an integer from 100 to 999, got {status!r}")
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
                raise TypeError(f"a Response header is a (name, value) pair of strings, got {pair!r}")
        self.body = bytes(body)
        self.status = status
        self.headers: tuple[tuple[str, str], ...] = tuple((name, value) for name, value in pairs)

    def __repr__(self) -> str:
        return f"Response(status={self.status}, {len(self.body)} bytes)"


class HandlerContext(SeededRng, OutsideTransaction):
    """What a handler gets besides the request: no caller (an HTTP request carries no identity), no
    transaction.

    - ``with_tx(fn)``: run ``fn(tx)`` in a transaction of its own, exactly as ``ProcedureContext.with_tx``.
    - ``http``: outbound HTTP, as a procedure's ``ctx.http``.
    - ``timestamp``: when the call began; ``identity``: the database's identity; ``rng``: a ``random.Random``
      seeded from ``timestamp``.
    """

    __slots__ = ("_run_tx", "http", "identity", "timestamp")
    _what = "an HTTP handler"

    def __init__(
        self,
        timestamp: Timestamp,
        identity: Identity,
        http: Any,
        run_tx: Callable[[Callable[[ReducerContext[Any]], Any]], Any],
    ) -> None:
        self.timestamp = timestamp
        self.identity = identity
        self.http = http
        self._run_tx = run_tx
        self._rng = None

    def __repr__(self) -> str:
        return f"HandlerContext(timestamp={self.timestamp!r})"


@dataclass(frozen=True, slots=True)
class Route:
    method: str | None  # None: any method
    path: str
    handler: Callable[..., Any]

    def overlaps(self, other: Route) -> bool:
        return self.path == other.path and (
            self.method is None or other.method is None or self.method == other.method
        )


class Router:
    """The routes of a module: ``Router().get("/path", handler).post(...)``. Each method returns a new router.

    Paths are ``""`` or begin with ``/`` and hold only lowercase ASCII letters, digits and ``-_~/``; they match
    the requested path exactly. Two routes of one path whose methods overlap (``any`` overlaps every method)
    are refused."""

    __slots__ = ("routes",)

    def __init__(self, routes: tuple[Route, ...] = ()) -> None:
        self.routes = routes

    def get(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("GET", path, handler)

    def head(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("HEAD", path, handler)

    def post(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("POST", path, handler)

    def put(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("PUT", path, handler)

    def delete(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("DELETE", path, handler)

    def patch(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("PATCH", path, handler)

    def options(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add("OPTIONS", path, handler)

    def any(self, path: str, handler: Callable[..., Any]) -> Router:
        return self.add(None, path, handler)

    def add(self, method: str | None, path: str, handler: Callable[..., Any]) -> Router:
        """A router with one more route (``method`` None: any method)."""
        if method is not None and method not in ROUTE_METHODS:
            raise ModuleError(f"route method `{method}` is not one of {', '.join(ROUTE_METHODS)}")
        check_route_path(path)
        if not callable(handler):
            raise ModuleError(f"the handler of route `{path}` is not a function: {handler!r}")
        return self._with(Route(method, path, handler))

    def nest(self, prefix: str, other: Router) -> Router:
        """This router's routes and ``other``'s, each of the latter under ``prefix``."""
        check_route_path(prefix)
        if any(route.path.startswith(prefix) for route in self.routes):
            raise ModuleError(f"cannot nest a router at `{prefix}`: existing routes are under it")
        merged = self
        for route in other.routes:
            merged = merged._with(Route(route.method, _join_paths(prefix, route.path), route.handler))
        return merged

    def merge(self, other: Router) -> Router:
        """This router's routes and ``other``'s."""
        merged = self
        for route in other.routes:
            merged = merged._with(route)
        return merged

    def _with(self, route: Route) -> Router:
        for existing in self.routes:
            if existing.overlaps(route):
                raise ModuleError(f"route conflict for `{route.path}` ({_method_text(route.method)})")
        return Router((*self.routes, route))

    def __repr__(self) -> str:
        return f"Router({len(self.routes)} routes)"


def check_route_path(path: object) -> None:
    if not isinstance(path, str):
        raise ModuleError(f"a route path is a string, got {path!r}")
    if path and not path.startswith("/"):
        raise ModuleError(f"route paths must start with `/`: {path!r}")
    if not set(path) <= _PATH_CHARS:
        raise ModuleError(
            f"route paths may contain only ASCII lowercase letters, digits and `-_~/`: {path!r}"
        )


def _join_paths(prefix: str, suffix: str) -> str:
    if prefix == "/":
        return suffix
    if suffix == "/":
        return prefix
    return f"{prefix.rstrip('/')}/{suffix.lstrip('/')}"


def _method_text(method: str | None) -> str:
    return "any method" if method is None else method


# ---- declarations ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class HandlerDecl:
    func: Callable[..., Any]
    name: str
    location: str


@dataclass(slots=True)
class RouterDecl:
    func: Callable[[], Any]
    location: str


def handler(func: F) -> F:
    """Declare an HTTP handler: ``def h(ctx: HandlerContext, request: Request) -> Response``. A route of the
    module's ``@router`` makes it reachable."""
    location = _location(1)
    if not callable(func) or not hasattr(func, "__code__"):
        raise ModuleError(f"@handler at {location}: decorates a function, got {func!r}")
    current_registry().http_handlers.append(HandlerDecl(func, func.__name__, location))
    return func


def router(func: F) -> F:
    """Declare the module's router: a function of no arguments returning a ``Router``; called once when the
    module is loaded."""
    location = _location(1)
    if not callable(func) or not hasattr(func, "__code__"):
        raise ModuleError(f"@router at {location}: decorates a function, got {func!r}")
    current_registry().http_routers.append(RouterDecl(func, location))
    return func


# ---- the definitions the module's ModuleDef holds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpHandlerDef:
    name: str
    func: Callable[..., Any]
    location: str = ""


@dataclass(frozen=True, slots=True)
class HttpRouteDef:
    handler: str  # the HttpHandlerDef's name
    method: str | None  # None: any method
    path: str

    def describe(self) -> str:
        return f"{self.method or 'ANY'} {self.path or '(root)'} -> {self.handler}"


def match_route(routes: Iterable[HttpRouteDef], method: str, path: str) -> HttpRouteDef | None:
    """The route that serves ``method`` at ``path`` (exact path; a route of any method serves every one)."""
    for route in routes:
        if route.path == path and (route.method is None or route.method == method):
            return route
    return None


def build_http(
    handler_decls: list[HandlerDecl],
    router_decls: list[RouterDecl],
    problem: Callable[[str, str], None],
) -> tuple[dict[str, HttpHandlerDef], list[HttpRouteDef]]:
    """Validate the declared handlers and the router; what goes wrong goes to ``problem(where, message)``."""
    handlers = _build_handlers(handler_decls, problem)
    if len(router_decls) > 1:
        where = f"@router (at {router_decls[1].location})"
        problem(where, f"a module has one router (another is declared at {router_decls[0].location})")
        return handlers, []
    if not router_decls:
        return handlers, []
    return handlers, _build_routes(router_decls[0], handlers, problem)


def _build_handlers(
    decls: list[HandlerDecl], problem: Callable[[str, str], None]
) -> dict[str, HttpHandlerDef]:
    handlers: dict[str, HttpHandlerDef] = {}
    for decl in decls:
        where = f"HTTP handler `{decl.name}` (at {decl.location})"
        shape = _handler_shape_problem(decl.func)
        if shape is not None:
            problem(where, shape)
        elif decl.name in handlers:
            problem(where, f"duplicate HTTP handler name (also declared at {handlers[decl.name].location})")
        else:
            handlers[decl.name] = HttpHandlerDef(decl.name, decl.func, decl.location)
    return handlers


def _build_routes(
    decl: RouterDecl, handlers: dict[str, HttpHandlerDef], problem: Callable[[str, str], None]
) -> list[HttpRouteDef]:
    """The routes of the router ``decl``'s function returns, each naming one of ``handlers``."""
    where = f"@router `{decl.func.__name__}` (at {decl.location})"
    try:
        built = decl.func()
    except ModuleError as exc:
        problem(where, str(exc))
        return []
    except Exception as exc:
        problem(where, f"raised {type(exc).__name__}: {exc}")
        return []
    if not isinstance(built, Router):
        problem(where, f"must return a Router, returned {built!r}")
        return []
    names = {handler.func: name for name, handler in handlers.items()}
    routes: list[HttpRouteDef] = []
    for route in built.routes:
        name = names.get(route.handler)
        if name is None:
            label = getattr(route.handler, "__name__", repr(route.handler))
            problem(where, f"route `{route.path}` names `{label}`, which is not an @handler function")
            continue
        routes.append(HttpRouteDef(name, route.method, route.path))
    return routes


def _handler_shape_problem(func: Callable[..., Any]) -> str | None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError) as exc:
        return f"cannot read its signature: {exc}"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) != 2 or any(param.kind not in positional for param in params):
        return "takes exactly two parameters: (ctx: HandlerContext, request: Request)"
    return None


def header_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers as a handler sees them: lower-case names, a repeated header's values joined by ``", "``."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def checked_response(name: str, returned: object, max_body: int) -> Response:
    """What handler ``name`` returned, if it is a ``Response`` whose body is at most ``max_body`` bytes."""
    if not isinstance(returned, Response):
        raise TypeError(f"HTTP handler `{name}` must return a Response, returned {returned!r}")
    if len(returned.body) > max_body:
        raise ValueError(
            f"HTTP handler `{name}` returned a body of {len(returned.body)} bytes; at most {max_body} are allowed"
        )
    return returned
