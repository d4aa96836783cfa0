"""CORS on /v1, as SpacetimeDB answers it (tower-http's CorsLayer in its client API: any origin, any method, the
Authorization / Accept / Content-Type request headers): a browser's preflight is answered, and pages of another
origin can read the answers, errors included. ``--cors-origins`` narrows the origins. Against a real server."""

import asyncio

import aiohttp
import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


PAGE = "http://localhost:5173"


def preflight_headers(method: str = "POST", headers: str = "authorization,content-type") -> dict[str, str]:
    return {
        "Origin": PAGE,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def answer(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{url}{path}", headers=headers) as response,
    ):
        await response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}


def test_a_preflight_is_answered_with_what_the_sdk_needs(server):
    for path in ("/v1/identity", "/v1/database/quickstart-chat/call/send_message", "/v1/database/x/sql"):
        status, headers = asyncio.run(answer(server.url, "OPTIONS", path, preflight_headers()))
        assert status == 200, path
        assert headers["access-control-allow-origin"] == "*"
        assert headers["access-control-allow-methods"] == "*"
        allowed = set(headers["access-control-allow-headers"].split(","))
        assert {"authorization", "content-type", "accept"} <= allowed


def test_answers_and_errors_are_readable_from_another_origin(server):
    status, headers = asyncio.run(answer(server.url, "GET", "/v1/ping", {"Origin": PAGE}))
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    status, headers = asyncio.run(answer(server.url, "POST", "/v1/identity", {"Origin": PAGE}))
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    # an error a page must be able to show: no such database, and a route that does not exist
    status, headers = asyncio.run(answer(server.url, "GET", "/v1/database/no-such-db", {"Origin": PAGE}))
    assert status == 404 and headers["access-control-allow-origin"] == "*"
    status, headers = asyncio.run(answer(server.url, "GET", "/v1/no/such/route", {"Origin": PAGE}))
    assert status == 404 and headers["access-control-allow-origin"] == "*"


def test_an_options_request_that_is_not_a_preflight_is_not_answered_as_one(server):
    status, headers = asyncio.run(answer(server.url, "OPTIONS", "/v1/ping", {"Origin": PAGE}))
    assert status == 405 and "access-control-allow-methods" not in headers


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory):
    server = start_server(None, extra_args=["--cors-origins", f"{PAGE}, https://app.example"])
    yield server
    server.shut_down()


def test_narrowed_origins_are_echoed_and_others_get_no_permission(narrowed):
    status, headers = asyncio.run(answer(narrowed.url, "OPTIONS", "/v1/identity", preflight_headers()))
    assert status == 200 and headers["access-control-allow-origin"] == PAGE
    assert "Origin" in headers["vary"]
    stranger = dict(preflight_headers(), Origin="https://evil.example")
    status, headers = asyncio.run(answer(narrowed.url, "OPTIONS", "/v1/identity", stranger))
    assert "access-control-allow-origin" not in headers and "access-control-allow-methods" not in headers
    status, headers = asyncio.run(answer(narrowed.url, "GET", "/v1/ping", {"Origin": "https://app.example"}))
    assert headers["access-control-allow-origin"] == "https://app.example"
    status, headers = asyncio.run(answer(narrowed.url, "GET", "/v1/ping", {"Origin": "https://evil.example"}))
    assert status == 200 and "access-control-allow-origin" not in headers
