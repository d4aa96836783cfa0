"""Server behaviour that needs no real process, tested in-process on aiohttp's test server: one behaviour per test.

The server here is the real ``Server`` (in memory, no data directory) and its real application (every middleware
and route); only the listening socket is aiohttp's test server instead of ``Server.start``'s, and no database is
ever launched, so no worker process starts. Behaviour that needs a worker, the CLI or a crash stays in the
end-to-end tests, which run a real server process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from spacetimedb.server.app import Server
from spacetimedb.server.connections import ConnectionGate, ConnectionSettings, OpenFiles


@asynccontextmanager
async def in_process_server() -> AsyncIterator[TestClient]:
    server = Server(None)
    app = server.make_app(ConnectionGate(ConnectionSettings().resolve(OpenFiles(1024))))
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        await server.egress.close()
        await server.auth.oidc.close()
        server.close()


def run(scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with in_process_server() as client:
            await scenario(client)

    asyncio.run(main())


async def new_identity(client: TestClient) -> tuple[str, dict[str, str]]:
    response = await client.post("/v1/identity")
    body = await response.json()
    return body["identity"], {"Authorization": f"Bearer {body['token']}"}


def test_ping_answers_200() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/ping")
        assert response.status == 200

    run(scenario)


def test_health_names_the_package_and_one_node() -> None:
    async def scenario(client: TestClient) -> None:
        body = await (await client.get("/v1/health")).json()
        assert body["package_name"] == "spacetimedb-py"
        assert body["nodes"] == 1

    run(scenario)


def test_a_new_identity_comes_with_a_token_that_verifies_as_it() -> None:
    async def scenario(client: TestClient) -> None:
        identity, auth = await new_identity(client)
        assert len(identity) == 64
        response = await client.get(f"/v1/identity/{identity}/verify", headers=auth)
        assert response.status == 204

    run(scenario)


def test_a_token_does_not_verify_as_another_identity() -> None:
    async def scenario(client: TestClient) -> None:
        _, auth = await new_identity(client)
        other, _ = await new_identity(client)
        response = await client.get(f"/v1/identity/{other}/verify", headers=auth)
        assert response.status == 400

    run(scenario)


def test_a_forged_token_is_refused_with_401() -> None:
    async def scenario(client: TestClient) -> None:
        identity, auth = await new_identity(client)
        token = auth["Authorization"].removeprefix("Bearer ")
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        response = await client.get(
            f"/v1/identity/{identity}/verify", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status == 401

    run(scenario)


def test_a_websocket_token_needs_credentials() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.post("/v1/identity/websocket-token")
        assert response.status == 401

    run(scenario)


def test_a_short_lived_websocket_token_verifies_as_the_same_identity() -> None:
    async def scenario(client: TestClient) -> None:
        identity, auth = await new_identity(client)
        short = (await (await client.post("/v1/identity/websocket-token", headers=auth)).json())["token"]
        response = await client.get(
            f"/v1/identity/{identity}/verify", headers={"Authorization": f"Bearer {short}"}
        )
        assert response.status == 204

    run(scenario)


def test_the_public_key_is_served_as_pem() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/identity/public-key")
        assert b"BEGIN PUBLIC KEY" in await response.read()

    run(scenario)


def test_an_identity_in_a_path_must_be_64_hex_digits() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/identity/not-hex/databases")
        assert response.status == 400
        assert "64 hex digits" in await response.text()

    run(scenario)


def test_a_new_identity_owns_no_databases() -> None:
    async def scenario(client: TestClient) -> None:
        identity, _ = await new_identity(client)
        body = await (await client.get(f"/v1/identity/{identity}/databases")).json()
        assert body == {"identities": []}

    run(scenario)


def test_an_unknown_database_is_404() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/database/no-such-database")
        assert response.status == 404

    run(scenario)


def test_publishing_needs_a_program_in_the_body() -> None:
    async def scenario(client: TestClient) -> None:
        _, auth = await new_identity(client)
        response = await client.put("/v1/database/empty", data=b"", headers=auth)
        assert response.status == 400
        assert "module program" in await response.text()

    run(scenario)


def test_metrics_are_prometheus_text() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/metrics")
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert "# TYPE" in await response.text()

    run(scenario)


def test_cors_answers_a_preflight_from_any_origin() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.options(
            "/v1/identity",
            headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
        )
        assert response.status in (200, 204)
        assert response.headers.get("Access-Control-Allow-Origin") in ("*", "https://example.com")

    run(scenario)


def test_an_error_body_is_readable_text() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.post("/v1/identity/websocket-token")
        text = await response.text()
        assert text, "an error says why"
        try:
            json.loads(text)
        except ValueError:
            return  # plain text, as upstream
        raise AssertionError(f"expected a plain-text error, got JSON: {text}")

    run(scenario)
