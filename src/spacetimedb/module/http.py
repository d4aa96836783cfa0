"""``ctx.http``: the outbound HTTP requests a procedure may make.

A module never opens a socket itself (its worker process may not): ``HttpClient`` checks a request, hands it to
the host's ``send`` (which has the server perform it under the server's egress policy) and waits for the answer.
Whatever goes wrong (a host the policy refuses, a timeout, a refused connection, a response too large) raises
``HttpError`` in the procedure with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_REQUEST_BODY = 16 << 20
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class HttpError(Exception):
    """An outbound HTTP request failed before a response arrived (or its response was refused)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout: float | None = None  # seconds; None: the server's limit


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """``status``, ``headers`` (name, value pairs in order; ``header(name)`` finds one), ``body`` (bytes)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding, "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """``ctx.http``: ``get``, ``post`` and ``request``; each returns an ``HttpResponse`` or raises ``HttpError``."""

    __slots__ = ("_send",)

    def __init__(self, send: Callable[[HttpRequest], HttpResponse]) -> None:
        self._send = send

    def get(self, url: str, *, headers: Headers | None = None, timeout: float | None = None) -> HttpResponse:
        return self.request("GET", url, headers=headers, timeout=timeout)

    def post(
        self,
        url: str,
        body: bytes | str = b"",
        *,
        headers: Headers | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        return self.request("POST", url, body=body, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | str = b"",
        headers: Headers | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        return self._send(make_request(method, url, body, headers, timeout))


def make_request(
    method: str, url: str, body: bytes | str, headers: Headers | None, timeout: float | None
) -> HttpRequest:
    """A checked request; ``HttpError`` says what is wrong with it."""
    verb = method.upper() if isinstance(method, str) else ""
    if verb not in METHODS:
        raise HttpError(f"unsupported HTTP method {method!r} (one of {', '.join(METHODS)})")
    if not isinstance(url, str):
        raise HttpError(f"the URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url!r}")
    data = body.encode() if isinstance(body, str) else body
    if not isinstance(data, (bytes, bytearray)):
        raise HttpError(f"the body must be bytes or str, got {type(body).__name__}")
    if len(data) > MAX_REQUEST_BODY:
        raise HttpError(f"the request body is {len(data)} bytes; at most {MAX_REQUEST_BODY} are allowed")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise HttpError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return HttpRequest(
        verb, url, _header_pairs(headers), bytes(data), None if timeout is None else float(timeout)
    )


def _header_pairs(headers: Headers | None) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for item in items:
        name, value = item
        if (
            not isinstance(name, str)
            or not isinstance(value, str)
            or "\n" in name + value
            or "\r" in name + value
        ):
            raise HttpError(f"invalid header {item!r}: names and values are strings without line breaks")
        pairs.append((name, value))
    return tuple(pairs)
