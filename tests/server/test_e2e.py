"""End to end against a real server process: HTTP publish, WebSocket clients in v3, v2 and v1 JSON."""

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from spacetimedb.protocol import v2
from spacetimedb.sats import IDENTITY, STRING, TIMESTAMP, U64, ProductType, codec

from .wsclient import ENCODE_STR, RawClient, table_rows, update_rows

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


ROOT = Path(__file__).resolve().parents[2]
CHAT = (ROOT / "examples" / "chat" / "quickstart_chat.py").read_bytes()
MESSAGE = codec(ProductType.of(("id", U64), ("sender", IDENTITY), ("sent", TIMESTAMP), ("text", STRING)))


async def publish(http: aiohttp.ClientSession, url: str, name: str = "chat") -> str:
    response = await http.post(f"{url}/v1/identity")
    token = (await response.json())["token"]
    response = await http.put(
        f"{url}/v1/database/{name}", data=CHAT, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, await response.text()
    return token


@pytest.mark.parametrize("protocols", [(v2.PROTOCOL_V3, v2.PROTOCOL_V2), (v2.PROTOCOL_V2,)])
def test_subscribe_call_and_updates_over_bsatn(server, protocols):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            await publish(http, server.url)
            alice, hello = await RawClient.connect(http, server.url, "chat", protocols)
            assert alice.protocol == protocols[0]
            assert hello.tag == v2.INITIAL_CONNECTION
            identity, _, token = hello.value
            assert token
            bob, _ = await RawClient.connect(http, server.url, "chat", protocols)
            for client in (alice, bob):
                await client.subscribe(0, "SELECT * FROM message")
                applied = await client.next_of(v2.SUBSCRIBE_APPLIED)
                assert table_rows(applied.value[2]) == {"message": []} or table_rows(applied.value[2]) == {}
            rid = await alice.call("send_message", ENCODE_STR("hello bob"))
            result = await alice.next_of(v2.REDUCER_RESULT)
            request_id, _, outcome = result.value
            assert request_id == rid and outcome.tag == v2.OUTCOME_OK
            own = update_rows(outcome.value[1])["message"][0]
            assert [MESSAGE.decode(r)[3] for r in own] == ["hello bob"]
            assert MESSAGE.decode(own[0])[1] == identity
            update = await bob.next_of(v2.TRANSACTION_UPDATE_TAG)
            assert [MESSAGE.decode(r)[3] for r in update_rows(update.value)["message"][0]] == ["hello bob"]
            rid = await alice.call("set_name", ENCODE_STR(""))
            failed = await alice.next_of(v2.REDUCER_RESULT)
            assert failed.value[2].tag == v2.OUTCOME_ERR
            assert codec(STRING).decode(failed.value[2].value) == "ValueError: Names must not be empty"
            await alice.send(v2.ONE_OFF_QUERY, 99, "SELECT * FROM message")
            one_off = await alice.next_of(v2.ONE_OFF_QUERY_RESULT)
            assert one_off.value[0] == 99 and one_off.value[1].tag == 0
            await alice.send(v2.UNSUBSCRIBE, 100, (0,), 1)
            dropped = await alice.next_of(v2.UNSUBSCRIBE_APPLIED)
            assert [MESSAGE.decode(r)[3] for r in table_rows(dropped.value[2])["message"]] == ["hello bob"]
            await alice.send(v2.SUBSCRIBE, 101, (5,), ("SELECT * FROM nope",))
            error = await alice.next_of(v2.SUBSCRIPTION_ERROR)
            assert error.value[0] == 101 and "nope" in error.value[2]
            await alice.ws.close()
            await bob.ws.close()

    asyncio.run(scenario())


def test_v1_json_protocol(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            await publish(http, server.url)
            client, first = await RawClient.connect(http, server.url, "chat", ("v1.json.spacetimedb",))
            assert client.protocol == "v1.json.spacetimedb"
            assert "IdentityToken" in first and first["IdentityToken"]["token"]
            ws = client.ws
            await ws.send_str(
                json.dumps(
                    {
                        "SubscribeMulti": {
                            "query_strings": ["SELECT * FROM message"],
                            "request_id": 1,
                            "query_id": {"id": 1},
                        }
                    }
                )
            )
            applied = await client.next()
            assert "SubscribeMultiApplied" in applied
            await ws.send_str(
                json.dumps(
                    {
                        "CallReducer": {
                            "reducer": "send_message",
                            "args": json.dumps(["hi json"]),
                            "request_id": 2,
                            "flags": 0,
                        }
                    }
                )
            )
            update = await client.next()
            body = update["TransactionUpdate"]
            assert body["reducer_call"]["reducer_name"] == "send_message"
            (table,) = body["status"]["Committed"]["tables"]
            assert (
                table["table_name"] == "message"
                and json.loads(table["updates"][0]["inserts"][0])["text"] == "hi json"
            )
            await ws.send_str(
                json.dumps(
                    {"CallReducer": {"reducer": "set_name", "args": '[""]', "request_id": 3, "flags": 0}}
                )
            )
            failed = await client.next()
            assert failed["TransactionUpdate"]["status"] == {"Failed": "ValueError: Names must not be empty"}
            await ws.send_str("not json")
            closed = await ws.receive()
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    asyncio.run(scenario())


def test_bad_handshakes(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            await publish(http, server.url)
            ws_url = f"{server.url}/v1/database/chat/subscribe".replace("http", "ws", 1)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(ws_url, protocols=["v9.nothing"])
            assert info.value.status == 400
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(ws_url.replace("/chat/", "/missing/"), protocols=[v2.PROTOCOL_V2])
            assert info.value.status == 404
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(ws_url + "?token=garbage", protocols=[v2.PROTOCOL_V2])
            assert info.value.status in (400, 401)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(ws_url + "?connection_id=" + "0" * 32, protocols=[v2.PROTOCOL_V2])
            assert info.value.status == 400

    asyncio.run(scenario())
