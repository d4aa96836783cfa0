"""SIGKILL the server during a load of reducer calls; after a restart every call that was acknowledged (with
confirmed reads, the acknowledgement only comes once the transaction is durable) is in the database."""

import asyncio
import random
import signal

import aiohttp
import pytest

from spacetimedb.protocol import v2

from ..conftest import start_server
from .test_e2e import publish
from .wsclient import ENCODE_STR, RawClient

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


async def load(url: str, clients: int, acknowledged: set[str], stop: asyncio.Event) -> None:
    async def one(n: int) -> None:
        async with aiohttp.ClientSession() as http:
            client, _ = await RawClient.connect(http, url, "chat", query="compression=None&confirmed=true")
            i = 0
            try:
                while not stop.is_set():
                    text = f"c{n}-{i}"
                    rid = await client.call("send_message", ENCODE_STR(text))
                    result = await client.next_of(v2.REDUCER_RESULT)
                    if result.value[0] == rid and result.value[2].tag == v2.OUTCOME_OK:
                        acknowledged.add(text)
                    i += 1
            except (TimeoutError, ConnectionError, aiohttp.ClientError, OSError):
                pass

    await asyncio.gather(*(one(n) for n in range(clients)))


@pytest.mark.parametrize("seed", [7, 8])
def test_acknowledged_calls_survive_sigkill(tmp_path, seed):
    server = start_server(tmp_path / "data")
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                token = await publish(http, server.url)
            acknowledged: set[str] = set()
            stop = asyncio.Event()
            task = asyncio.create_task(load(server.url, 8, acknowledged, stop))
            await asyncio.sleep(random.Random(seed).uniform(0.5, 1.5))
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
            stop.set()
            await asyncio.wait_for(task, 30)
            return token, acknowledged

        token, acknowledged = asyncio.run(scenario())
        assert len(acknowledged) > 20
        server = start_server(tmp_path / "data")

        async def stored() -> set[str]:
            async with aiohttp.ClientSession() as http:
                response = await http.post(
                    f"{server.url}/v1/database/chat/sql",
                    data="SELECT text FROM message",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status == 200
                return {row[0] for row in (await response.json())[0]["rows"]}

        present = asyncio.run(stored())
        missing = acknowledged - present
        assert not missing, f"{len(missing)} acknowledged calls lost: {sorted(missing)[:5]}"
        # nothing that was never sent appears
        assert all(text.startswith("c") for text in present)
    finally:
        if server.process.poll() is None:
            server.stop()
