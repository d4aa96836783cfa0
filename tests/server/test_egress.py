"""The egress policy of procedures' HTTP requests, against a loopback HTTP server the test starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from spacetimedb.protocol import seam
from spacetimedb.server.egress import EgressPolicy, HttpEgress, is_public_address

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


@asynccontextmanager
async def loopback_site() -> AsyncIterator[str]:
    async def hello(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(text=f"{request.method} {body.decode()} {request.headers.get('x-test', '')}")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 200_000)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    async def to_private(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.0.0.1:80/")

    app = web.Application()
    app.router.add_route("*", "/hello", hello)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/to-private", to_private)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def fetch_request(url: str, method: str = "GET", body: bytes = b"", timeout: float = 0) -> seam.HttpFetch:
    return seam.HttpFetch(1, method, url, ("x-test",), ("yes",), body, int(timeout * 1e6))


def scenario(policy: EgressPolicy, body: Callable[[HttpEgress, str], Awaitable[None]]) -> None:
    async def run() -> None:
        egress = HttpEgress(policy)
        try:
            async with loopback_site() as base:
                await body(egress, base)
        finally:
            await egress.close()

    asyncio.run(run())


def test_a_host_listed_by_name_is_reached_with_method_headers_and_body() -> None:
    async def body(egress: HttpEgress, base: str) -> None:
        answer = await egress.fetch(fetch_request(f"{base}/hello", "POST", b"ping"))
        assert answer.error is None and answer.status == 200
        assert answer.body == b"POST ping yes"
        assert "Content-Type" in answer.header_names

    scenario(EgressPolicy(allow=("127.0.0.1",)), body)


def test_loopback_is_refused_unless_listed_by_name() -> None:
    async def body(egress: HttpEgress, base: str) -> None:
        answer = await egress.fetch(fetch_request(f"{base}/hello"))
        assert answer.status == 0 and answer.error is not None
        assert "not a public address" in answer.error
        by_name = await egress.fetch(fetch_request(base.replace("127.0.0.1", "localhost") + "/hello"))
        assert by_name.error is not None and "non-public address" in by_name.error

    scenario(EgressPolicy(allow=("*",)), body)


def test_a_redirect_to_a_private_address_is_refused_as_upstream_words_it() -> None:
    # upstream's standalone/http_egress.rs: the first host is reachable, the private IP literal it redirects to
    # is not, and the refusal carries upstream's wording (modules match on it)
    async def body(egress: HttpEgress, base: str) -> None:
        answer = await egress.fetch(fetch_request(f"{base}/to-private"))
        assert answer.status == 0 and answer.error is not None
        assert "refusing to connect to private or special-purpose addresses" in answer.error

    scenario(EgressPolicy(allow=("127.0.0.1", "*")), body)


def test_a_host_outside_the_allowlist_is_refused() -> None:
    async def body(egress: HttpEgress, base: str) -> None:
        answer = await egress.fetch(fetch_request("http://example.com/"))
        assert answer.error == "the server does not allow requests to host `example.com`"
        answer = await egress.fetch(fetch_request("ftp://127.0.0.1/x"))
        assert answer.error is not None and "not an http(s) URL" in answer.error

    scenario(EgressPolicy(allow=("127.0.0.1",)), body)


def test_timeouts_sizes_and_redirects_are_bounded() -> None:
    async def body(egress: HttpEgress, base: str) -> None:
        started = asyncio.get_running_loop().time()
        answer = await egress.fetch(fetch_request(f"{base}/slow", timeout=0.3))
        assert answer.error is not None and "timed out" in answer.error
        assert asyncio.get_running_loop().time() - started < 3  # the request's own, shorter, timeout
        answer = await egress.fetch(fetch_request(f"{base}/big"))
        assert answer.error == "the response is larger than the server allows (100000 bytes)"
        answer = await egress.fetch(fetch_request(f"{base}/redirect"))
        assert answer.error is not None  # port 9 on loopback refuses; never an exception

    scenario(EgressPolicy(allow=("127.0.0.1",), max_response_bytes=100_000, timeout_seconds=2), body)


def test_the_server_timeout_caps_what_a_module_asks_for() -> None:
    async def body(egress: HttpEgress, base: str) -> None:
        answer = await egress.fetch(fetch_request(f"{base}/slow", timeout=30))
        assert answer.error is not None and "timed out" in answer.error

    scenario(EgressPolicy(allow=("127.0.0.1",), timeout_seconds=0.3), body)


def test_public_addresses() -> None:
    assert is_public_address("93.184.216.34")
    assert not any(
        is_public_address(a)
        for a in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1")
    )
    assert not is_public_address("::ffff:127.0.0.1")
