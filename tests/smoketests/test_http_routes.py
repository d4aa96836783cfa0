"""Upstream's crates/smoketests/tests/cluster/http_routes.rs, ported: module-defined HTTP handlers, served at
``/v1/database/NAME/route/PATH``.

The Rust-module tests are ported with their modules written against the Python API (``spacetimedb.http``:
``handler``, ``router``, ``Router``, ``Request``, ``Response``, ``HandlerContext.with_tx``; see
docs/http-handlers.md). The same tests for C++, TypeScript and C# modules do not apply.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE = {
    "cpp_http_routes_end_to_end": "the same test for a C++ module (another module language)",
    "typescript_http_routes_end_to_end": "the same test for a TypeScript module (another module language)",
    "csharp_http_routes_end_to_end": "the same test for a C# module (another module language)",
    "cpp_http_routes_pr_example_round_trip": "the same test for a C++ module (another module language)",
    "typescript_http_routes_pr_example_round_trip": "the same test for a TypeScript module (another module language)",
    "csharp_http_routes_pr_example_round_trip": "the same test for a C# module (another module language)",
    "cpp_http_routes_are_strict_for_non_root_paths": "the same test for a C++ module (another module language)",
    "typescript_http_routes_are_strict_for_non_root_paths": "the same test for a TypeScript module (another module language)",
    "csharp_http_routes_are_strict_for_non_root_paths": "the same test for a C# module (another module language)",
    "cpp_http_routes_are_strict_for_root_paths": "the same test for a C++ module (another module language)",
    "typescript_http_routes_are_strict_for_root_paths": "the same test for a TypeScript module (another module language)",
    "csharp_http_routes_are_strict_for_root_paths": "the same test for a C# module (another module language)",
    "cpp_http_handler_observes_full_external_uri": "the same test for a C++ module (another module language)",
    "typescript_http_handler_observes_full_external_uri": "the same test for a TypeScript module (another module language)",
    "csharp_http_handler_observes_full_external_uri": "the same test for a C# module (another module language)",
    "cpp_handle_request_body": "the same test for a C++ module (another module language)",
    "typescript_handle_request_body": "the same test for a TypeScript module (another module language)",
    "csharp_handle_request_body": "the same test for a C# module (another module language)",
    "cpp_http_handlers_tutorial_say_hello_route_works": "the same test for a C++ module (another module language)",
    "typescript_http_handlers_tutorial_say_hello_route_works": "the same test for a TypeScript module (another module language)",
    "csharp_http_handlers_tutorial_say_hello_route_works": "the same test for a C# module (another module language)",
}

NO_SUCH_ROUTE_BODY = "Database has not registered a handler for this route"
HEADER = "from spacetimedb.http import HandlerContext, Request, Response, Router, handler, router\n"

HTTP_ROUTES = (
    HEADER
    + """
from spacetimedb import table, u64

@table(name="entries", public=True)
class Entry:
    id: u64
    value: str

@handler
def get_simple(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"ok")

@handler
def post_insert(ctx: HandlerContext, request: Request) -> Response:
    ctx.with_tx(lambda tx: tx.db.entries.insert(Entry(id=tx.db.entries.count(), value="posted")))
    return Response(b"inserted")

@handler
def get_count(ctx: HandlerContext, request: Request) -> Response:
    return Response(str(ctx.with_tx(lambda tx: tx.db.entries.count())).encode())

@handler
def any_handler(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"any")

@handler
def header_echo(ctx: HandlerContext, request: Request) -> Response:
    return Response(request.headers.get("x-echo", "").encode())

@handler
def set_response_header(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"header-set", headers={"x-response": "set"})

@handler
def body_handler(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"non-empty")

@handler
def teapot(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"teapot", status=418)

@router
def routes() -> Router:
    return (Router().get("/get", get_simple).post("/post", post_insert).get("/count", get_count)
            .any("/any", any_handler).get("/header", header_echo).get("/set-header", set_response_header)
            .get("/body", body_handler).get("/teapot", teapot))
"""
)

HTTP_ROUTES_EXAMPLE = (
    HEADER
    + """
from typing import Annotated
from urllib.parse import parse_qs, urlsplit
from spacetimedb import AutoInc, PrimaryKey, table, u64

@table(name="data")
class Data:
    id: Annotated[u64, PrimaryKey, AutoInc]
    body: bytes

@handler
def insert(ctx: HandlerContext, request: Request) -> Response:
    row = ctx.with_tx(lambda tx: tx.db.data.insert(Data(id=0, body=request.body)))
    return Response(str(row.id).encode())

@handler
def retrieve(ctx: HandlerContext, request: Request) -> Response:
    key = int(parse_qs(urlsplit(request.uri).query)["id"][0])
    row = ctx.with_tx(lambda tx: tx.db.data.id.find(key))
    return Response(row.body) if row is not None else Response(b"", status=404)

@router
def routes() -> Router:
    return Router().post("/insert", insert).get("/retrieve", retrieve)
"""
)


def constant_handlers(**bodies: str) -> str:
    """Handlers that each answer their constant body: ``name="body"``."""
    return "".join(
        f"""
@handler
def {name}(ctx: HandlerContext, request: Request) -> Response:
    return Response({body.encode()!r})
"""
        for name, body in bodies.items()
    )


HTTP_ROUTES_STRICT_NON_ROOT = (
    HEADER
    + constant_handlers(foo="foo", foo_slash="foo-slash")
    + """
@router
def routes() -> Router:
    return Router().get("/foo", foo).get("/foo/", foo_slash)
"""
)

HTTP_ROUTES_STRICT_ROOT = (
    HEADER
    + constant_handlers(empty_root="empty", slash_root="slash", foo="foo", foo_slash="foo-slash")
    + """
@router
def routes() -> Router:
    return Router().get("", empty_root).get("/", slash_root).get("/foo", foo).get("/foo/", foo_slash)
"""
)

HTTP_ROUTES_FULL_URI = (
    HEADER
    + """
@handler
def echo_uri(ctx: HandlerContext, request: Request) -> Response:
    return Response(request.uri.encode())

@router
def routes() -> Router:
    return Router().get("/echo-uri", echo_uri)
"""
)

HTTP_ROUTES_REQUEST_BODY = (
    HEADER
    + """
@handler
def reverse_bytes(ctx: HandlerContext, request: Request) -> Response:
    return Response(request.body[::-1])

@handler
def reverse_words(ctx: HandlerContext, request: Request) -> Response:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return Response(b"request body must be valid UTF-8", status=400)
    return Response(" ".join(reversed(text.split(" "))).encode())

@router
def routes() -> Router:
    return Router().post("/reverse-bytes", reverse_bytes).post("/reverse-words", reverse_words)
"""
)

# the Python rendering of the say-hello example of upstream's HTTP-handlers documentation page
TUTORIAL_SAY_HELLO = (
    HEADER
    + """
@handler
def say_hello(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"Hello!")

@router
def routes() -> Router:
    return Router().get("/say-hello", say_hello)
"""
)

Send = Callable[..., tuple[int, bytes, dict[str, str]]]


def send(
    url: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request: (status, body, headers with lower-case names)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


def routes_of(alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str, source: str) -> str:
    """Publish ``source`` to ``db_name``; the base URL of its routes."""
    module = tmp_path / "module.py"
    module.write_text(source)
    alice.publish(db_name, module)
    return f"{shared_server.url}/v1/database/{db_name}/route"


def ok(response: tuple[int, bytes, dict[str, str]], body: bytes | None = None) -> None:
    assert 200 <= response[0] < 300, response
    assert body is None or response[1] == body, response


def test_http_routes_end_to_end(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """Upstream http_routes_end_to_end: GET, POST (in a transaction), counting, ANY, request and response
    headers, a status of the handler's choosing, 404 with a fixed body for an unknown route, and routes need no
    valid credentials where the database's own API does."""
    base = routes_of(alice, tmp_path, shared_server, db_name, HTTP_ROUTES)
    ok(send(f"{base}/get"), b"ok")
    ok(send(f"{base}/post", "POST", b"payload"))
    ok(send(f"{base}/count"), b"1")
    ok(send(f"{base}/any", "PUT"), b"any")
    ok(send(f"{base}/header", **{"x-echo": "hello"}), b"hello")
    response = send(f"{base}/set-header")
    ok(response)
    assert response[2].get("x-response") == "set", response
    ok(send(f"{base}/body"), b"non-empty")
    assert send(f"{base}/teapot")[0] == 418
    assert send(f"{base}/missing")[:2] == (404, NO_SUCH_ROUTE_BODY.encode())
    schema = send(
        f"{shared_server.url}/v1/database/{db_name}/schema?version=10", Authorization="Bearer not-a-jwt"
    )
    assert 400 <= schema[0] < 500, schema
    ok(send(f"{base}/get", Authorization="Bearer not-a-jwt"))


def test_http_routes_pr_example_round_trip(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """Upstream http_routes_pr_example_round_trip: a POSTed body is stored and read back by id; an unknown id
    is the handler's 404, a handler that raises is a server error."""
    base = routes_of(alice, tmp_path, shared_server, db_name, HTTP_ROUTES_EXAMPLE)
    payload = b"hello from the PR example"
    response = send(f"{base}/insert", "POST", payload)
    ok(response)
    ok(send(f"{base}/retrieve?id={response[1].decode()}"), payload)
    assert send(f"{base}/retrieve?id=999999999")[0] == 404
    assert send(f"{base}/retrieve?id=not-a-u64")[0] >= 500


def test_http_routes_are_strict_for_non_root_paths(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """Upstream http_routes_are_strict_for_non_root_paths: a trailing slash is another route, a doubled slash
    matches nothing."""
    base = routes_of(alice, tmp_path, shared_server, db_name, HTTP_ROUTES_STRICT_NON_ROOT)
    ok(send(f"{base}/foo"), b"foo")
    ok(send(f"{base}/foo/"), b"foo-slash")
    assert send(f"{base}//")[:2] == (404, NO_SUCH_ROUTE_BODY.encode())
    assert send(f"{base}//foo")[:2] == (404, NO_SUCH_ROUTE_BODY.encode())


def test_http_routes_are_strict_for_root_paths(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """Upstream http_routes_are_strict_for_root_paths: ``.../route`` and ``.../route/`` are two routes."""
    base = routes_of(alice, tmp_path, shared_server, db_name, HTTP_ROUTES_STRICT_ROOT)
    ok(send(base), b"empty")
    ok(send(f"{base}/"), b"slash")


def test_http_handler_observes_full_external_uri(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """Upstream http_handler_observes_full_external_uri: a handler sees the URI the client requested, query
    string included."""
    base = routes_of(alice, tmp_path, shared_server, db_name, HTTP_ROUTES_FULL_URI)
    url = f"{base}/echo-uri?alpha=beta"
    ok(send(url), url.encode())


def test_handle_request_body(alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str) -> None:
    """Upstream handle_request_body: a handler gets the request body as bytes (not necessarily UTF-8) and
    chooses its response's status."""
    base = routes_of(alice, tmp_path, shared_server, db_name, HTTP_ROUTES_REQUEST_BODY)
    ok(
        send(f"{base}/reverse-bytes", "POST", bytes([0xFF, 0x00, 0xFE, 0x7F])),
        bytes([0x7F, 0xFE, 0x00, 0xFF]),
    )
    ok(send(f"{base}/reverse-bytes", "POST", b"abcba"), b"abcba")
    ok(send(f"{base}/reverse-bytes", "POST", b"stressed"), b"desserts")
    invalid = send(f"{base}/reverse-words", "POST", bytes([0x66, 0x6F, 0x80, 0x6F]))
    assert invalid[:2] == (400, b"request body must be valid UTF-8"), invalid
    ok(send(f"{base}/reverse-words", "POST", b"step on no pets"), b"pets no on step")
    ok(send(f"{base}/reverse-words", "POST", b"red green blue"), b"blue green red")


def test_http_handlers_tutorial_say_hello_route_works(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """Upstream http_handlers_tutorial_say_hello_route_works: the documentation's say-hello example answers."""
    base = routes_of(alice, tmp_path, shared_server, db_name, TUTORIAL_SAY_HELLO)
    ok(send(f"{base}/say-hello"), b"Hello!")


# ---- ours, beyond upstream's tests ------------------------------------------------------------------------------

OURS = (
    HEADER
    + """
from spacetimedb import table, u64

@table(name="hit")
class Hit:
    id: u64

@handler
def echo_uri(ctx: HandlerContext, request: Request) -> Response:
    return Response(request.uri)

@handler
def fail(ctx: HandlerContext, request: Request) -> Response:
    raise RuntimeError("this handler fails on purpose")

@handler
def hit(ctx: HandlerContext, request: Request) -> Response:
    return Response(str(ctx.with_tx(lambda tx: tx.db.hit.insert(Hit(id=tx.db.hit.count())).id + 1)))

@router
def routes() -> Router:
    return Router().get("/echo-uri", echo_uri).get("/fail", fail).post("/hit", hit)
"""
)
OURS_UPDATED = (
    OURS.replace('.post("/hit", hit)', '.post("/hit", hit).get("/hits", hits)')
    + """
@handler
def hits(ctx: HandlerContext, request: Request) -> Response:
    return Response(str(ctx.with_tx(lambda tx: tx.db.hit.count())))
"""
)


def test_routes_behind_a_proxy_failures_bounds_and_updates(
    alice: User, tmp_path: Path, shared_server: ServerProcess, db_name: str
) -> None:
    """What upstream's tests leave out: the forwarded scheme and host in the URI a handler sees, a failing
    handler's 500 and its reason, the request body bound, an unknown database, and an update that adds a route
    (an automatic migration) keeps the data."""
    base = routes_of(alice, tmp_path, shared_server, db_name, OURS)
    echoed = send(f"{base}/echo-uri?a=1", **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"})
    assert echoed[1] == f"https://example.com/v1/database/{db_name}/route/echo-uri?a=1".encode(), echoed
    failed = send(f"{base}/fail")
    assert failed[0] == 500 and b"this handler fails on purpose" in failed[1], failed
    assert "this handler fails on purpose" in alice("logs", db_name).out
    too_large = send(f"{base}/hit", "POST", b"x" * ((16 << 20) + 1))
    assert too_large[0] == 413, too_large[:2]
    assert send(f"{shared_server.url}/v1/database/no-such-db-{db_name}/route/hit")[:2] == (
        404,
        b"No such database.",
    )
    ok(send(f"{base}/hit", "POST"), b"1")
    assert send(f"{base}/hits")[0] == 404
    (tmp_path / "module.py").write_text(OURS_UPDATED)
    update = alice.publish(db_name, tmp_path / "module.py", "-y")
    assert "Created HTTP route GET /hits -> hits" in update.out, update
    ok(send(f"{base}/hits"), b"1")
