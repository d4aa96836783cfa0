"""Procedures' outbound HTTP: the server performs each request a worker asks for, under one policy per server.

Workers have no sockets, so this is the only way module code reaches the network, and the policy here is the
whole of what it may do:

- hosts: ``allow`` patterns (``example.com``, ``*.example.com``, an IP literal, or ``*`` for any host);
- addresses: loopback, private, link-local and other non-public addresses are refused unless the request's host
  is listed by name (not through ``*``), so a module cannot reach the server's own machine or network by
  accident or by a DNS name that resolves there (the check runs on the addresses actually connected to, so DNS
  rebinding and redirects are covered);
- a timeout per request (a module may ask for less, never more), a response-size limit, and a limit on requests
  in flight across the server (a request past it waits for a slot within its own timeout).
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from spacetimedb.protocol import seam

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# upstream's wording for a refused private address, which modules match on (upstream's http_egress smoketests do)
PRIVATE_REFUSAL = "refusing to connect to private or special-purpose addresses"


class EgressRefused(Exception):
    """The policy refuses a request; the message says why (the procedure gets it as an ``HttpError``)."""


@dataclass(frozen=True)
class EgressPolicy:
    allow: tuple[str, ...] = ("*",)  # host patterns
    timeout_seconds: float = 10.0
    max_response_bytes: int = 10 << 20
    max_concurrent: int = 16

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in self.allow)

    def names_host(self, host: str) -> bool:
        """Whether ``host`` is listed by itself, not only through ``*``."""
        host = host.lower().rstrip(".")
        return any(p != "*" and fnmatch.fnmatchcase(host, p.lower()) for p in self.allow)


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PolicyResolver(AbstractResolver):
    """Resolves as usual, then drops the addresses the policy refuses for that host."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not self._policy.host_allowed(host):
            raise EgressRefused(f"the server does not allow requests to host `{host}`")
        results = await self._inner.resolve(host, port, family)
        if self._policy.names_host(host):
            return results
        public = [r for r in results if is_public_address(r["host"])]
        if not public:
            raise EgressRefused(
                f"host `{host}` resolves to a non-public address: {PRIVATE_REFUSAL} (the server allows "
                "them only for hosts it lists by name)"
            )
        return public

    async def close(self) -> None:
        await self._inner.close()


class HttpEgress:
    """Performs workers' ``HttpFetch`` requests (event loop only)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self._slots = asyncio.Semaphore(policy.max_concurrent)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=_PolicyResolver(self.policy), limit=self.policy.max_concurrent
            )
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(self, request: seam.HttpFetch) -> seam.HttpAnswer:
        """The answer to ``request``; every failure is an answer with an ``error``, never an exception."""
        try:
            status, headers, body = await self._perform(request)
        except EgressRefused as exc:
            return _failed(request, str(exc))
        except TimeoutError:
            return _failed(request, f"{request.method} {request.url} timed out")
        except aiohttp.ClientConnectorError as exc:
            refused = _refusal_in(exc)
            return _failed(
                request, refused or f"{request.method} {request.url} failed: cannot connect ({exc.os_error})"
            )
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            refused = _refusal_in(exc)
            return _failed(
                request, refused or f"{request.method} {request.url} failed: {exc or type(exc).__name__}"
            )
        names = tuple(name for name, _ in headers)
        values = tuple(value for _, value in headers)
        return seam.HttpAnswer(request.fetch, status, names, values, body, None)

    async def _perform(self, request: seam.HttpFetch) -> tuple[int, list[tuple[str, str]], bytes]:
        timeout = self.policy.timeout_seconds
        if request.timeout_micros:
            timeout = min(timeout, request.timeout_micros / 1e6)
        headers = list(zip(request.header_names, request.header_values, strict=True))
        method, url, body = request.method, request.url, request.body or None
        async with asyncio.timeout(timeout):
            async with self._slots:
                # Redirects are followed here, one checked hop at a time: aiohttp's own following would connect
                # to an IP literal in a Location header without asking the resolver, so without the policy.
                for _ in range(MAX_REDIRECTS + 1):
                    self._check_target(url)
                    async with self._client().request(
                        method, url, headers=headers, data=body, allow_redirects=False
                    ) as response:
                        location = response.headers.get("Location")
                        if response.status not in REDIRECT_STATUSES or location is None:
                            return (
                                response.status,
                                list(response.headers.items()),
                                await self._read_body(response),
                            )
                    url = urljoin(url, location)
                    if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                        method, body = "GET", None  # what clients do: the redirect is fetched, not re-posted
                raise EgressRefused(f"{request.method} {request.url}: more than {MAX_REDIRECTS} redirects")

    def _check_target(self, url: str) -> None:
        """Refuse a URL the policy does not allow before connecting (an IP literal never reaches the resolver)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressRefused(f"not an http(s) URL: {url!r}")
        if not self.policy.host_allowed(parts.hostname):
            raise EgressRefused(f"the server does not allow requests to host `{parts.hostname}`")
        if (
            _is_ip(parts.hostname)
            and not is_public_address(parts.hostname)
            and not self.policy.names_host(parts.hostname)
        ):
            raise EgressRefused(
                f"`{parts.hostname}` is not a public address: {PRIVATE_REFUSAL} (the server allows it only if "
                "it lists it by name)"
            )

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.policy.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise EgressRefused(f"the response is larger than the server allows ({limit} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _refusal_in(exc: BaseException) -> str | None:
    """aiohttp wraps a resolver's exception; find the policy's refusal in the chain."""
    seen: Any = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, EgressRefused):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _failed(request: seam.HttpFetch, error: str) -> seam.HttpAnswer:
    return seam.HttpAnswer(request.fetch, 0, (), (), b"", error)
