"""The module side of HTTP handlers: ``Router`` rules (upstream's crates/bindings/src/http.rs), what a module
that declares handlers must get right, and migrations that add or remove handlers and routes."""

from __future__ import annotations

import pytest

from spacetimedb.http import Response, Router
from spacetimedb.module import ModuleError, load_module, plan_migration
from spacetimedb.module.handlers import Request, header_map

HEADER = "from spacetimedb.http import HandlerContext, Request, Response, Router, handler, router\n"


def ok_handler(ctx: object, request: Request) -> Response:
    return Response(b"ok")


def other_handler(ctx: object, request: Request) -> Response:
    return Response(b"other")


def module_source(routes: str, handlers: tuple[str, ...] = ("a", "b")) -> bytes:
    defs = "".join(
        f"@handler\ndef {name}(ctx: HandlerContext, request: Request) -> Response:\n    return Response({name!r})\n"
        for name in handlers
    )
    return (HEADER + defs + f"@router\ndef routes() -> Router:\n    return {routes}\n").encode()


# ---- Router --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("foo", "route paths must start with `/`"),
        ("/Foo", "may contain only ASCII lowercase letters, digits and `-_~/`"),
        ("/a b", "may contain only"),
        ("/a?b", "may contain only"),
    ],
)
def test_bad_route_paths_are_refused(path: str, message: str) -> None:
    with pytest.raises(ModuleError, match=message.replace("?", r"\?")):
        Router().get(path, ok_handler)


def test_routes_of_one_path_conflict_when_their_methods_overlap() -> None:
    router = Router().get("/x", ok_handler).post("/x", other_handler).get("/x/", ok_handler)
    assert [(r.method, r.path) for r in router.routes] == [("GET", "/x"), ("POST", "/x"), ("GET", "/x/")]
    with pytest.raises(ModuleError, match="route conflict for `/x` \\(GET\\)"):
        router.get("/x", other_handler)
    with pytest.raises(ModuleError, match="route conflict for `/x` \\(any method\\)"):
        router.any("/x", other_handler)


def test_nest_and_merge_join_paths_as_upstream() -> None:
    inner = Router().get("/", ok_handler).get("/leaf", other_handler)
    nested = Router().get("/top", ok_handler).nest("/api", inner)
    assert [r.path for r in nested.routes] == ["/top", "/api", "/api/leaf"]
    with pytest.raises(ModuleError, match="existing routes are under it"):
        nested.nest("/api", Router().get("/more", ok_handler))
    merged = Router().get("/a", ok_handler).merge(Router().post("/a", other_handler))
    assert [(r.method, r.path) for r in merged.routes] == [("GET", "/a"), ("POST", "/a")]


def test_a_router_is_immutable() -> None:
    base = Router()
    base.get("/a", ok_handler)
    assert base.routes == ()


def test_responses_check_what_they_are_given() -> None:
    assert Response("é").body == "é".encode()
    assert Response(b"", headers={"a": "1"}).headers == (("a", "1"),)
    with pytest.raises(TypeError, match="body is bytes or str"):
        Response(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer from 100 to 999"):
        Response(b"", status=42)
    with pytest.raises(TypeError, match="pair of strings"):
        Response(b"", headers=[("a", 1)])  # type: ignore[list-item]


def test_request_headers_are_lower_case_and_repeated_ones_joined() -> None:
    assert header_map([("X-A", "1"), ("x-a", "2"), ("B", "3")]) == {"x-a": "1, 2", "b": "3"}


# ---- declaring handlers in a module ----------------------------------------------------------------------------------


def test_a_module_holds_its_handlers_and_routes() -> None:
    module = load_module(module_source('Router().get("", a).any("/b", b)')).module_def
    assert sorted(module.http_handlers) == ["a", "b"]
    assert [(r.method, r.path, r.handler) for r in module.http_routes] == [
        ("GET", "", "a"),
        (None, "/b", "b"),
    ]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (module_source("[]"), "must return a Router, returned []"),
        (module_source('Router().get("/x", len)'), "route `/x` names `len`, which is not an @handler"),
        (module_source('Router().get("x", a)'), "route paths must start with `/`"),
        (module_source("1 / 0"), "raised ZeroDivisionError"),
        (
            (
                HEADER + "@handler\ndef lonely(ctx: HandlerContext) -> Response:\n    return Response()\n"
            ).encode(),
            "takes exactly two parameters: (ctx: HandlerContext, request: Request)",
        ),
        (
            module_source('Router().get("/a", a)') + b"@router\ndef more() -> Router:\n    return Router()\n",
            "a module has one router",
        ),
        (module_source('Router().get("/a", a)', handlers=("a", "a")), "duplicate HTTP handler name"),
    ],
)
def test_mistakes_in_handlers_and_routers_are_refused_at_load(source: bytes, problem: str) -> None:
    with pytest.raises(ModuleError) as raised:
        load_module(source)
    assert problem in str(raised.value)


# ---- migrations ------------------------------------------------------------------------------------------------------


def test_adding_removing_and_repointing_routes_is_automatic_and_writes_nothing() -> None:
    before = load_module(module_source('Router().get("/a", a).get("/b", b)')).module_def
    after = load_module(
        module_source('Router().get("/a", c).post("/new", c)', handlers=("a", "c"))
    ).module_def
    plan = plan_migration(before, after)
    assert plan.is_automatic and not plan.changes_schema
    texts = [step.text for step in plan.steps]
    assert texts == [  # removals first, routes before the handlers they name
        "Removed HTTP route GET /a -> a",
        "Removed HTTP route GET /b -> b",
        "Removed HTTP handler b",
        "Created HTTP handler c",
        "Created HTTP route GET /a -> c",
        "Created HTTP route POST /new -> c",
    ]
    assert "Created HTTP route POST /new -> c" in plan.pretty()
