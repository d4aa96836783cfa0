"""Module-defined HTTP handlers in the host, without a server: routing, the request a handler sees, ``with_tx``,
failures (500 with the reason, in the module log), the response bound and the time budget."""

from __future__ import annotations

import random
from concurrent.futures import Future

import pytest

from spacetimedb.host.clients import ClientHub
from spacetimedb.host.database import Database, DatabaseOptions
from spacetimedb.host.module_host import HostOptions
from spacetimedb.host.procedures import HandlerOutcome, HandlerRequest
from spacetimedb.module.handlers import NO_SUCH_ROUTE, match_route
from spacetimedb.protocol import seam

from .helpers import DB, OWNER, ServerEnd, rows

PROGRAM = b"""
from spacetimedb import table, u64
from spacetimedb.http import HandlerContext, Request, Response, Router, handler, router

@table(name="note", public=True)
class Note:
    id: u64
    text: str

@handler
def echo(ctx: HandlerContext, request: Request) -> Response:
    seen = f"{request.method} {request.uri} {request.headers.get('x-tag', '-')} {request.body.decode()}"
    return Response(seen, status=201, headers=[("x-kind", "echo"), ("x-kind", "twice")])

@handler
def add_note(ctx: HandlerContext, request: Request) -> Response:
    count = ctx.with_tx(lambda tx: tx.db.note.insert(Note(id=tx.db.note.count(), text=request.text())).id + 1)
    return Response(str(count))

@handler
def add_then_fail(ctx: HandlerContext, request: Request) -> Response:
    def body(tx):
        tx.db.note.insert(Note(id=99, text="rolled back"))
        raise RuntimeError("the transaction fails on purpose")
    try:
        ctx.with_tx(body)
    except RuntimeError as exc:
        return Response(str(exc), status=409)
    return Response(b"unreachable")

@handler
def crash(ctx: HandlerContext, request: Request) -> Response:
    raise ValueError("the handler fails on purpose")

@handler
def not_a_response(ctx: HandlerContext, request: Request) -> Response:
    return "plain text"

@handler
def use_db(ctx: HandlerContext, request: Request) -> Response:
    return Response(str(ctx.db))

@handler
def big(ctx: HandlerContext, request: Request) -> Response:
    return Response(b"x" * 2048)

@handler
def context(ctx: HandlerContext, request: Request) -> Response:
    return Response(f"{ctx.identity.to_hex()} {ctx.timestamp.micros} {ctx.rng.random()!r}")

@handler
def spin(ctx: HandlerContext, request: Request) -> Response:
    while True:
        pass

@router
def routes() -> Router:
    return (Router().any("/echo", echo).post("/notes", add_note).post("/fail-tx", add_then_fail)
            .get("/crash", crash).get("/not-a-response", not_a_response).get("/db", use_db).get("/big", big)
            .get("/spin", spin).get("/context", context))
"""


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory):
    options = DatabaseOptions(HostOptions(0.5))
    database = Database.create(tmp_path_factory.mktemp("handlers") / "db", DB, OWNER, PROGRAM, options)
    yield database
    database.shutdown()


def handle(
    database: Database, method: str, path: str, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
) -> HandlerOutcome:
    """Route the request as the worker does and wait for the handler's answer."""
    route = match_route(database.host.loaded.module_def.http_routes, method, path)
    assert route is not None, f"no route for {method} {path}"
    done: Future[HandlerOutcome] = Future()
    uri = f"http://example.test/v1/database/db/route{path}?q=1"
    request = HandlerRequest(route.handler, method, uri, headers, body, database.identity, done.set_result)
    database.procedures.call_handler(request)
    return done.result(10)


def test_the_handler_sees_the_request_and_chooses_the_response(database: Database) -> None:
    outcome = handle(database, "PUT", "/echo", b"payload", (("X-Tag", "a"), ("x-tag", "b")))
    assert outcome.status == 201
    assert outcome.body == b"PUT http://example.test/v1/database/db/route/echo?q=1 a, b payload"
    assert outcome.headers == (("x-kind", "echo"), ("x-kind", "twice"))


def test_the_context_has_the_database_identity_the_time_and_a_seeded_rng(database: Database) -> None:
    identity, micros, drawn = handle(database, "GET", "/context").body.decode().split()
    assert identity == database.identity.to_hex()
    assert float(drawn) == random.Random(int(micros)).random()


def test_with_tx_commits_and_a_failed_one_rolls_back_alone(database: Database) -> None:
    before = len(rows(database.host, "note"))  # other tests of this file add notes too
    assert handle(database, "POST", "/notes", b"first").body == str(before + 1).encode()
    refused = handle(database, "POST", "/fail-tx")
    assert (refused.status, refused.body) == (409, b"the transaction fails on purpose")
    texts = [row[1] for row in rows(database.host, "note")]
    assert "first" in texts and "rolled back" not in texts and len(texts) == before + 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/crash", "the handler fails on purpose"),
        ("/not-a-response", "must return a Response, returned 'plain text'"),
        ("/db", "has no ctx.db"),
    ],
)
def test_a_failing_handler_is_a_500_with_its_reason_in_the_body_and_the_log(
    database: Database, path: str, reason: str
) -> None:
    outcome = handle(database, "GET", path)
    assert outcome.status == 500 and outcome.found
    assert reason in outcome.body.decode()
    assert reason in "\n".join(database.module_log.tail(20))


def test_a_response_larger_than_the_bound_is_refused(database: Database) -> None:
    database.procedures.max_response_bytes = 1024
    try:
        outcome = handle(database, "GET", "/big")
    finally:
        database.procedures.max_response_bytes = 16 << 20
    assert outcome.status == 500 and "at most 1024 are allowed" in outcome.body.decode()
    assert handle(database, "GET", "/big").body == b"x" * 2048


def test_a_handler_that_spins_is_stopped_at_its_budget(database: Database) -> None:
    outcome = handle(database, "GET", "/spin")
    assert outcome.status == 500 and "ran out of its time budget (0.5s)" in outcome.body.decode()
    assert handle(database, "POST", "/notes", b"after").status == 200  # its thread is free again


def test_a_handler_removed_since_its_route_matched_is_a_404(database: Database) -> None:
    done: Future[HandlerOutcome] = Future()
    request = HandlerRequest("gone", "GET", "http://x/", (), b"", database.identity, done.set_result)
    database.procedures.call_handler(request)
    outcome = done.result(10)
    assert (outcome.status, outcome.found) == (404, False)
    assert outcome.body == b"Database has not registered a handler for this route"


def test_routes_match_exact_paths_and_methods(database: Database) -> None:
    routes = database.host.loaded.module_def.http_routes
    assert match_route(routes, "DELETE", "/echo") is not None  # `any` takes every method
    assert match_route(routes, "GET", "/notes") is None  # POST only
    assert match_route(routes, "POST", "/notes/") is None  # the trailing slash is another path
    assert match_route(routes, "GET", "") is None


def test_the_worker_routes_requests_and_skips_those_nobody_waits_for(database: Database) -> None:
    with ServerEnd(database) as server:
        _route_requests(database, server)


def _route_requests(database: Database, server: ServerEnd) -> None:
    hub = ClientHub(database, server.outbox)

    def serve(request: seam.CallHttpHandler) -> None:  # as the worker does: a job of the host thread
        database.host.submit(lambda: hub.call_handler(request))

    serve(seam.CallHttpHandler(1, "GET", "/echo/", "http://x/echo/", (), (), b""))
    assert server.next() == seam.HandlerDone(1, False, 404, (), (), NO_SUCH_ROUTE.encode())
    hub.cancel(2)  # its client hung up while it waited
    serve(seam.CallHttpHandler(2, "POST", "/notes", "http://x/notes", (), (), b"never"))
    serve(seam.CallHttpHandler(3, "GET", "/echo", "http://x/echo", ("X-Tag",), ("t",), b"b"))
    answer = server.next()
    assert answer == seam.HandlerDone(
        3, True, 201, ("x-kind", "x-kind"), ("echo", "twice"), b"GET http://x/echo t b"
    )
    assert "never" not in [row[1] for row in rows(database.host, "note")]
    with pytest.raises(seam.SeamViolation, match="do not pair up"):
        hub.call_handler(seam.CallHttpHandler(4, "GET", "/echo", "http://x/echo", ("a", "b"), ("1",), b""))
