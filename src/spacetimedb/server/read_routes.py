"""Routes that call reducers, run SQL and read a database: its transactions, stats, logs, schema and clock."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from spacetimedb.controller import DatabaseUnavailableError, PastRefused
from spacetimedb.protocol import seam
from spacetimedb.sats import Identity, Timestamp
from spacetimedb.sats.json import to_json
from spacetimedb.sats.types import TIMESTAMP

from .route_support import (
    HttpError,
    _bool,
    _database,
    _identity_headers,
    _no_space,
    _require_owner,
    _server,
    caller,
    caller_with_claims,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
DISCONNECT_POLL_SECONDS = 0.25
MAX_LISTED_TRANSACTIONS = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ---- calling, querying, reading ----------------------------------------------------------------------------------


_CALL_ANSWERS = {
    seam.CALL_FAILED: 530,
    seam.CALL_OUT_OF_BUDGET: 402,
    seam.CALL_INTERNAL_ERROR: 500,
    seam.CALL_NO_SUCH_REDUCER: 404,
    seam.CALL_BAD_ARGUMENTS: 400,
    seam.CALL_LIFECYCLE: 400,
}


async def call_reducer(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    reducer = request.match_info["reducer"]
    if request.content_type != "application/json":
        raise HttpError(415, "the arguments must be sent as JSON (Content-Type: application/json)")
    args = await _text(request) if request.content_length != 0 else "[]"
    who, minted, claims = caller_with_claims(request)
    running = await server.database(database)
    done = await running.call(reducer, args or "[]", who, claims)
    headers = _identity_headers(who, minted)
    headers["spacetime-execution-duration-micros"] = str(done.duration_micros)
    headers["spacetime-energy-used"] = "0"
    if done.status == seam.CALL_COMMITTED:
        await running.durable.wait(done.offset)
        if done.value_json is not None:  # a procedure's return value
            return web.Response(
                status=200, text=done.value_json, content_type="application/json", headers=headers
            )
        return web.Response(status=200, headers=headers)
    if done.status == seam.CALL_NO_SPACE:
        return _no_space(request, headers)
    if done.status == seam.CALL_REFUSED:
        raise HttpError(403, f"the module refused the connection: {done.message}")
    if done.status in (seam.CALL_NO_SUCH_REDUCER, seam.CALL_BAD_ARGUMENTS, seam.CALL_LIFECYCLE):
        raise HttpError(_CALL_ANSWERS[done.status], done.message)
    return web.Response(status=_CALL_ANSWERS.get(done.status, 500), text=done.message, headers=headers)


# the charsets whose text reads the same as UTF-8 (ASCII is a subset of it)
_UTF8_COMPATIBLE = ("utf-8", "ascii")


async def _text(request: web.Request) -> str:
    """The body as text. Text bodies are UTF-8: any other charset is refused (415) rather than guessed."""
    charset = request.charset
    if charset and _codec_name(charset) not in _UTF8_COMPATIBLE:
        raise HttpError(415, f"unsupported charset `{charset}`: send the body as UTF-8 (charset=utf-8)")
    body = await request.read()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"the body is not valid UTF-8: {exc}") from None


def _codec_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None


async def sql(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    text = await _text(request)
    if "as_of" in request.query:
        return await _sql_as_of(request, database, text)
    who, minted, claims = caller_with_claims(request)
    running = await server.database(database)
    started = asyncio.get_running_loop().time()
    done = await _while_connected(request, running.sql(text, who, claims))
    if done.refused:  # as /call answers a refused connection
        raise HttpError(403, f"the module refused the connection: {done.body}")
    if done.no_space:
        return _no_space(request)
    if not done.ok:
        raise HttpError(400, done.body)
    if _bool(request, "confirmed", False):
        await running.durable.wait(done.offset)
    headers = _identity_headers(who, minted)
    headers["spacetime-execution-duration-micros"] = str(
        int((asyncio.get_running_loop().time() - started) * 1e6)
    )
    return web.Response(text=done.body, content_type="application/json", headers=headers)


async def _sql_as_of(request: web.Request, database: Identity, text: str) -> web.Response:
    """Owner only: ``text`` (reads only) on the database as it was right after a transaction, given by its
    offset or a time (RFC 3339); the headers say what it cost."""
    who = _require_owner(request, database)
    offset, micros = _as_of(request.query["as_of"])
    try:
        done = await _server(request).controller.query_past(database, text, who, offset, micros)
    except PastRefused as exc:
        raise HttpError(400, f"cannot read the past: {exc}") from None
    headers = {
        "spacetime-as-of-offset": str(done.offset),
        "spacetime-as-of-snapshot-offset": "" if done.snapshot_offset is None else str(done.snapshot_offset),
        "spacetime-as-of-replayed": str(done.replayed),
        "spacetime-as-of-micros": str(done.micros),
    }
    if not done.ok:
        return web.Response(status=400, text=done.body, headers=headers)
    return web.Response(text=done.body, content_type="application/json", headers=headers)


def _as_of(text: str) -> tuple[int | None, int | None]:
    """A transaction offset, or a time as µs since the epoch."""
    text = text.strip()
    if text.isdigit():
        return int(text), None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HttpError(
            400, f"as_of must be a transaction offset or a time like 2026-12-06T21:18:13Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return None, (moment - _EPOCH) // dt.timedelta(microseconds=1)


async def transactions(request: web.Request) -> web.Response:
    """Owner only: the transactions of the database (offset, time, reducer, caller, rows per table), ``limit``
    of them from offset ``from`` (default: the newest)."""
    database = _database(request)
    _require_owner(request, database)
    try:
        first = int(request.query["from"]) if "from" in request.query else None
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise HttpError(400, "from and limit must be integers") from None
    if not 1 <= limit <= MAX_LISTED_TRANSACTIONS or (first is not None and first < 0):
        raise HttpError(400, f"limit must be 1 to {MAX_LISTED_TRANSACTIONS}, and from at least 0")
    try:
        entries = await _server(request).controller.list_transactions(database, first, limit)
    except PastRefused as exc:
        raise HttpError(400, f"cannot list the transactions: {exc}") from None
    return web.Response(text=entries, content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    """Owner only: what the database's worker holds (clients, subscriptions), for operators and tests."""
    server = _server(request)
    database = _database(request)
    _require_owner(request, database)
    running = await server.database(database)
    counts = await running.stats()
    return web.json_response(counts._asdict())


async def logs(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    database = _database(request)
    _require_owner(request, database)
    try:
        lines = int(request.query["num_lines"]) if "num_lines" in request.query else None
    except ValueError:
        raise HttpError(400, "num_lines must be an integer") from None
    follow = _bool(request, "follow", False)
    running = server.controller.running(database)
    if running is None and follow and server.controller.failure(database) is None:
        try:
            running = await server.database(database)
        except DatabaseUnavailableError:
            running = None  # the log on disk says why
    if running is not None:
        tail = await running.tail_log(lines)
    else:
        tail = await server.controller.read_log(database, lines)
    response = web.StreamResponse(
        headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def follower(line: str) -> None:
        _offer(queue, line)

    following = follow and running is not None
    if following:
        assert running is not None
        running.follow_log(follower)
    try:
        for line in tail:
            await response.write((line + "\n").encode())
        while following and not server.stopping and not _gone(request):
            try:
                line = await asyncio.wait_for(queue.get(), 0.5)
            except TimeoutError:
                continue  # look again whether the client left or the server is stopping
            if not line:
                break  # the database stopped
            await response.write((line + "\n").encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if following:
            assert running is not None
            running.unfollow_log(follower)
    return response


async def _while_connected(request: web.Request, work: Awaitable[T]) -> T:
    """Await ``work``, but cancel it (the worker then stops the query) once the client has hung up."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
        if done:
            return task.result()
        if _gone(request):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise HttpError(499, "the client closed the connection")


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _offer(queue: asyncio.Queue[str], line: str) -> None:
    try:
        queue.put_nowait(line)
    except asyncio.QueueFull:  # a follower that cannot keep up loses lines rather than memory
        pass


SCHEMA_VERSIONS = ("9", "10")


async def schema(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    # upstream's SchemaQueryParams (crates/client-api/src/routes/database.rs): `version` is required, 9 or 10
    version = request.query.get("version")
    if version is None:
        raise HttpError(400, "Failed to deserialize query string: missing field `version`")
    if version not in SCHEMA_VERSIONS:
        raise HttpError(
            400,
            f"Failed to deserialize query string: version: unknown variant `{version}`, expected `9` or `10`",
        )
    running = await server.database(database)
    who, minted = caller(request)
    # `event_flags=true` (asked for by this project's `spacetime generate`) marks event tables, which V9 cannot say
    raw = await running.schema(_bool(request, "event_flags", False), int(version))
    return web.Response(text=raw, content_type="application/json", headers=_identity_headers(who, minted))


async def timestamp(request: web.Request) -> web.Response:
    _database(request)
    return web.json_response(to_json(TIMESTAMP, Timestamp.now()))
