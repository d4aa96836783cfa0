"""A worker that dies closes its own WebSocket clients with a reason (1011), and only them: a client of the victim
keeps its subscription, and the attacker's database accepts clients again once it has restarted."""

import asyncio
import json
import uuid

import aiohttp
import pytest

from .helpers import Arena, Database, assert_victim_intact, connect, module_source, publish_attacker

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


CRASHES = module_source("crashes")
PROTOCOL = "v1.json.spacetimedb"
RECEIVE_TIMEOUT = 10.0


async def open_client(http: aiohttp.ClientSession, arena: Arena, database: Database):
    """A v1 JSON client of ``database`` past its first frame (IdentityToken)."""
    url = f"{arena.url}/v1/database/{database.name}/subscribe".replace("http", "ws", 1)
    ws = await http.ws_connect(url, protocols=(PROTOCOL,), headers=database.owner.headers)
    assert ws.protocol == PROTOCOL
    first = await ws.receive(RECEIVE_TIMEOUT)
    assert first.type == aiohttp.WSMsgType.TEXT, first
    assert "IdentityToken" in json.loads(first.data)
    return ws


async def next_text(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict:
    """The next text frame whose single key is ``wanted`` (others are skipped)."""
    while True:
        message = await ws.receive(RECEIVE_TIMEOUT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        body = json.loads(message.data)
        if wanted in body:
            return body[wanted]


@pytest.mark.parametrize("reducer", ["exit_process", "kill_itself", "sleep_a_minute"])
def test_dead_worker_closes_its_clients_with_a_reason(arena, reducer):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, CRASHES, "websocket")
            bystander = await open_client(client.http, arena, arena.victim)
            await bystander.send_str(
                json.dumps({"Subscribe": {"query_strings": ["SELECT * FROM note"], "request_id": 1}})
            )
            await next_text(bystander, "InitialSubscription")
            ws = await open_client(client.http, arena, attacker)

            answer = await client.call(attacker, reducer, timeout=arena.hard_deadline + 30)
            assert answer.status == 503, answer
            closed = await ws.receive(arena.hard_deadline + RECEIVE_TIMEOUT)
            print(f"[{reducer}] the client was closed: {closed.type.name} {closed.data} {closed.extra!r}")
            assert closed.type == aiohttp.WSMsgType.CLOSE, closed
            assert closed.data == 1011, closed
            assert closed.extra, "the close frame gives no reason"
            await ws.close()

            # the victim's client still gets its updates
            text = f"after-{uuid.uuid4().hex}"
            assert (await client.call(arena.victim, "write", text)).status == 200
            update = await next_text(bystander, "TransactionUpdateLight")
            assert text in json.dumps(update)
            await bystander.close()
            # the attacker's database restarts on the next access and takes clients again
            again = await open_client(client.http, arena, attacker)
            await again.close()
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())
