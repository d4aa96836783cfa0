"""A small stdlib HTTP client for commands that talk to a server.

Why stdlib: importing aiohttp costs more than the whole rest of a short command, and a CLI makes one
request at a time. Redirects are deliberately *not* followed, so a bearer token can never be forwarded to
another host than the one it was passed for. Proxy variables are ignored for the same reason (and because
the usual target is a local server).

Usage::

    response = http.request("GET", target.endpoint("/v1/ping"))
    http.raise_for_status(response, target)          # one-line CliError unless 2xx
    payload = http.request("POST", target.endpoint("/v1/identity")).json()

Every failure to reach the server becomes a :class:`ServerUnreachableError` with the URL and the hint to
run ``spacetime start``.
"""

from __future__ import annotations

import contextlib
import http.client
import json as jsonlib
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

from spacetimedb import __version__
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.servers import ServerTarget

DEFAULT_TIMEOUT_SECONDS = 30.0
USER_AGENT = f"spacetime-cli/{__version__}"
_MAX_ERROR_DETAIL = 200


class ServerUnreachableError(CliError):
    """No HTTP response at all: refused, unknown host, timeout, TLS failure."""


@dataclass(frozen=True)
class HttpResponse:
    method: str
    url: str
    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            raise CliError(
                f"{self.method} {self.url} returned a body that is not JSON: {_summary(self.text())!r}"
            ) from None


def request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    json: Any = None,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> HttpResponse:
    """Send one request and read the whole response. Any status is returned; only I/O failures raise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"cannot send a request to {url!r}: not an http(s) URL")
    if json is not None:
        body = jsonlib.dumps(json).encode("utf-8")
        content_type = content_type or "application/json"
    request_headers = _request_headers(token, content_type, headers)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = _connect(parts.scheme, parts.netloc, timeout)
    try:
        connection.request(method, path, body=body, headers=request_headers)
        response = connection.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise _unreachable(url, error) from None
    finally:
        connection.close()
    return HttpResponse(
        method=method,
        url=url,
        status=response.status,
        reason=response.reason,
        body=payload,
        headers={name.lower(): value for name, value in response.getheaders()},
    )


@contextlib.contextmanager
def streaming(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: IO[bytes] | None = None,
    length: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Iterator[http.client.HTTPResponse]:
    """Send one request (``body`` streamed from a file of ``length`` bytes) and yield the response unread, for
    bodies too large to hold in memory. I/O failures raise ``ServerUnreachableError``."""
    parts = urlsplit(url)
    headers = _request_headers(token, "application/octet-stream" if body is not None else None, None)
    if length is not None:
        headers["Content-Length"] = str(length)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _connect(parts.scheme, parts.netloc, timeout)
    try:
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            raise _unreachable(url, error) from None
        yield response
    finally:
        connection.close()


def whole(response: http.client.HTTPResponse, method: str, url: str) -> HttpResponse:
    """The rest of a streamed response, read, as ``request`` returns it."""
    return HttpResponse(
        method=method,
        url=url,
        status=response.status,
        reason=response.reason,
        body=response.read(),
        headers={name.lower(): value for name, value in response.getheaders()},
    )


def raise_for_status(response: HttpResponse, target: ServerTarget) -> HttpResponse:
    """Return ``response`` if it is 2xx, else raise a one-line CliError that quotes the server."""
    if response.ok:
        return response
    detail = _summary(response.text())
    message = f"{response.method} {response.url} failed: {response.status} {response.reason}"
    if detail:
        message += f": {detail}"
    hint = None
    if response.status == 401:
        hint = f"the server rejected the saved token; forget it with `spacetime logout -s {target.label}` and retry"
    raise CliError(message, hint=hint)


def _request_headers(
    token: str | None, content_type: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(extra or {})
    return headers


def _connect(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        import ssl  # only https needs it, and it is a noticeable import

        return http.client.HTTPSConnection(netloc, timeout=timeout, context=ssl.create_default_context())
    return http.client.HTTPConnection(netloc, timeout=timeout)


def _unreachable(url: str, error: BaseException) -> ServerUnreachableError:
    if isinstance(error, socket.timeout | TimeoutError):
        reason = "timed out"
    elif isinstance(error, socket.gaierror):
        reason = f"unknown host ({error.strerror})"
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror.lower()
    else:
        reason = str(error) or type(error).__name__
    return ServerUnreachableError(
        f"cannot reach the server at {url}: {reason}",
        hint="is it running? start a local one with `spacetime start`",
    )


def _summary(text: str) -> str:
    first_line = " ".join(text.split())
    if len(first_line) > _MAX_ERROR_DETAIL:
        return first_line[: _MAX_ERROR_DETAIL - 3] + "..."
    return first_line
