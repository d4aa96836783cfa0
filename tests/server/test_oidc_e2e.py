"""OpenID Connect tokens against a real server started with ``--oidc-issuer`` (twice: an RSA issuer that requires an
audience, an EC one that does not): over HTTP, over WebSocket directly and through ``/v1/identity/websocket-token``
(as the TypeScript SDK connects), each refusal a 401 with its reason, and a rotated key picked up."""

import asyncio

import aiohttp
import jwt
import pytest

from spacetimedb.protocol import v2
from tests.conftest import start_server

from .oidc_issuer import TestIssuer, new_key
from .test_e2e import MESSAGE, publish
from .test_oidc import upstream_identity
from .wsclient import ENCODE_STR, RawClient, update_rows

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


@pytest.fixture(scope="module")
def issuers():
    with TestIssuer() as rsa_issuer, TestIssuer(path="/tenant") as ec_issuer:
        rsa_issuer.add_key("RS256")
        ec_issuer.add_key("ES256")
        yield rsa_issuer, ec_issuer


@pytest.fixture(scope="module")
def oidc_server(issuers):
    rsa_issuer, ec_issuer = issuers
    args = ["--oidc-issuer", f"{rsa_issuer.url}#web-chat", "--oidc-issuer", ec_issuer.url]
    server = start_server(None, extra_args=[*args, "--oidc-key-refresh", "0"])
    # after `listening on`: where the data is, the connection limits, then the trusted issuers
    announced = [server.process.stdout.readline() for _ in range(3)]
    assert announced[2].strip() == (
        f"also accepting the tokens of OIDC issuers: {rsa_issuer.url} (audience web-chat), {ec_issuer.url}"
    ), announced

    async def publish_chat():
        async with aiohttp.ClientSession() as http:
            await publish(http, server.url)

    asyncio.run(publish_chat())
    yield server
    server.shut_down()


def only_kid(issuer: TestIssuer) -> str:
    return next(iter(issuer.keys))


async def verify(http: aiohttp.ClientSession, url: str, identity_hex: str, token: str) -> tuple[int, str]:
    async with http.get(
        f"{url}/v1/identity/{identity_hex}/verify", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        return response.status, await response.text()


async def send_as(http: aiohttp.ClientSession, url: str, token: str, text: str):
    """Connect with ``token``, send a message, and return (identity from the server's hello, the sender stored)."""
    client, hello = await RawClient.connect(http, url, "chat", token=token)
    identity = hello.value[0]
    await client.subscribe(0, "SELECT * FROM message")
    await client.next_of(v2.SUBSCRIBE_APPLIED)
    await client.call("send_message", ENCODE_STR(text))
    result = await client.next_of(v2.REDUCER_RESULT)
    assert result.value[2].tag == v2.OUTCOME_OK
    stored = MESSAGE.decode(update_rows(result.value[2].value[1])["message"][0][0])
    await client.ws.close()
    return identity, stored[1]


@pytest.mark.parametrize("which", [0, 1], ids=["RS256", "ES256"])
def test_a_good_token_works_over_http_and_websocket(oidc_server, issuers, which):
    issuer = issuers[which]
    expected = upstream_identity(issuer.url, "dana")
    token = issuer.token(only_kid(issuer), subject="dana")

    async def scenario():
        async with aiohttp.ClientSession() as http:
            assert await verify(http, oidc_server.url, expected.to_hex(), token) == (204, "")
            identity, sender = await send_as(http, oidc_server.url, token, "hello from an OIDC user")
            assert identity == sender == expected
            # the SDK's way: exchange for a short-lived token of this server, then connect with that
            async with http.post(
                f"{oidc_server.url}/v1/identity/websocket-token", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
                short = (await response.json())["token"]
            identity, sender = await send_as(http, oidc_server.url, short, "and again")
            assert identity == sender == expected

    asyncio.run(scenario())


def test_each_bad_token_gets_401_with_its_reason(oidc_server, issuers):
    rsa_issuer, ec_issuer = issuers
    rsa_kid, ec_kid = only_kid(rsa_issuer), only_kid(ec_issuer)
    anyone = upstream_identity(rsa_issuer.url, "user-1").to_hex()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            cases = {
                "unknown issuer": stranger.token(stranger.add_key("RS256")),
                "bad signature": ec_issuer.token(ec_kid, key=new_key("ES256")),  # its kid, another key
                "unsupported algorithm 'none'": jwt.encode(
                    {"iss": rsa_issuer.url, "sub": "x"}, None, algorithm="none"
                ),
                "token expired": ec_issuer.token(ec_kid, lifetime=-300),
                "does not include 'web-chat'": rsa_issuer.token(rsa_kid, audience="another-app"),
            }
            for reason, token in cases.items():
                status, text = await verify(http, oidc_server.url, anyone, token)
                assert status == 401 and reason in text, (reason, status, text)
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await RawClient.connect(http, oidc_server.url, "chat", token=token)
                assert info.value.status == 401, reason
                async with http.get(
                    f"{oidc_server.url}/v1/database/chat/subscribe",
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    assert response.status == 401 and reason in await response.text(), reason
            # the database is unharmed: a good token still sends
            good = rsa_issuer.token(rsa_kid, subject="after-the-attacks")
            identity, _ = await send_as(http, oidc_server.url, good, "still here")
            assert identity == upstream_identity(rsa_issuer.url, "after-the-attacks")

    with TestIssuer() as stranger:
        asyncio.run(scenario())


def test_a_rotated_key_is_picked_up(oidc_server, issuers):
    _, ec_issuer = issuers
    old_kid = only_kid(ec_issuer)
    old_token = ec_issuer.token(old_kid, subject="erin")

    async def scenario():
        async with aiohttp.ClientSession() as http:
            expected = upstream_identity(ec_issuer.url, "erin").to_hex()
            assert (await verify(http, oidc_server.url, expected, old_token))[0] == 204
            new_kid = ec_issuer.rotate("ES256")
            fetched = ec_issuer.hits["jwks"]
            assert await verify(
                http, oidc_server.url, expected, ec_issuer.token(new_kid, subject="erin")
            ) == (
                204,
                "",
            )
            assert ec_issuer.hits["jwks"] == fetched + 1

    asyncio.run(scenario())
