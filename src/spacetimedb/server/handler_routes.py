"""``/v1/database/:name/route/*path``: requests to a module's own HTTP handlers.

The route needs no credentials (a handler has no caller), takes any method, and hands the handler the full URI
the client asked for: scheme and host as a proxy forwarded them (``X-Forwarded-Proto``, ``X-Forwarded-Host``)
or as the request carries them, then the path and query string as sent. Which handler serves a path is the
module's business: the worker matches it, and a path it has no route for is a 404 with a fixed body.
"""

from __future__ import annotations

import logging

from aiohttp import web

from spacetimedb.protocol.seam import MAX_HANDLER_BODY
from spacetimedb.sizes import format_size

from .route_support import HttpError, _database, _server

log = logging.getLogger(__name__)

# the URL pattern: everything after `/route`, which is empty or begins with `/`
ROUTE_PATTERN = "/v1/database/{name}/route{path:(/.*)?}"
# headers the server sets itself: a handler's own would contradict the body it sends
_FRAMING_HEADERS = frozenset(("content-length", "transfer-encoding", "connection"))


async def call_route(request: web.Request) -> web.StreamResponse:
    database = _database(request)
    body = await _bounded_body(request)
    running = await _server(request).database(database)
    done = await running.http_handler(
        request.method, request.match_info["path"], external_uri(request), list(request.headers.items()), body
    )
    if len(done.header_names) != len(done.header_values) or not 100 <= done.status <= 999:
        log.warning("database %s: an HTTP handler's answer was malformed", database.to_hex())
        raise HttpError(500, "the HTTP handler's response is malformed")
    response = web.Response(status=done.status, body=done.body)
    for name, value in zip(done.header_names, done.header_values, strict=True):
        if name.lower() in _FRAMING_HEADERS:
            continue
        if not _valid_header(name, value):
            raise HttpError(500, f"the HTTP handler's response has an invalid header {name!r}")
        response.headers.add(name, value)
    return response


def external_uri(request: web.Request) -> str:
    """The URI the client asked for, as upstream rebuilds it behind a proxy."""
    scheme = _forwarded(request, "X-Forwarded-Proto") or request.scheme
    authority = _forwarded(request, "X-Forwarded-Host") or request.host
    return f"{scheme}://{authority}{request.raw_path}"


def _forwarded(request: web.Request, name: str) -> str | None:
    value = request.headers.get(name, "").split(",")[0].strip()
    return value or None


async def _bounded_body(request: web.Request) -> bytes:
    too_large = HttpError(413, f"the request body is larger than {format_size(MAX_HANDLER_BODY)}")
    if request.content_length is not None and request.content_length > MAX_HANDLER_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > MAX_HANDLER_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _valid_header(name: str, value: str) -> bool:
    token = name and all(33 <= ord(c) <= 126 and c not in '"(),/:;<=>?@[\\]{}' for c in name)
    return bool(token) and not any(c in value for c in "\r\n\0")
