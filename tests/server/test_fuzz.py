"""10,000 random and mutated frames at a live server: it keeps serving a well-behaved client throughout, and
its database is intact afterwards (same rows before and after a restart)."""

import asyncio
import json
import random
from pathlib import Path

import aiohttp
import pytest

from spacetimedb.protocol import v2
from spacetimedb.protocol.v1json import PROTOCOL_V1_JSON

from ..conftest import start_server
from .test_e2e import MESSAGE, publish
from .wsclient import ENCODE_STR, RawClient, update_rows

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


FRAMES = 10_000
SCALE_FRAMES = 30_000  # ~25k connections: a 100k run took 4.5 min of one CI worker and found nothing more
BINARY = (v2.PROTOCOL_V3, v2.PROTOCOL_V2)
# answered at once, however many clients came before (the chat module keeps a row per identity it saw)
PROBE_QUERY = "SELECT * FROM user WHERE online = true"
ALL_PROTOCOLS = (v2.PROTOCOL_V3, v2.PROTOCOL_V2, PROTOCOL_V1_JSON)


def valid_messages(rng: random.Random) -> list[bytes]:
    return [
        v2.encode_client_message(
            v2.SUBSCRIBE, rng.randrange(1 << 32), (rng.randrange(100),), ("SELECT * FROM message",)
        ),
        v2.encode_client_message(v2.UNSUBSCRIBE, 1, (rng.randrange(100),), 1),
        v2.encode_client_message(v2.ONE_OFF_QUERY, 2, "SELECT * FROM user WHERE online = true"),
        v2.encode_client_message(v2.CALL_REDUCER, 3, 0, "send_message", ENCODE_STR("fuzz")),
        v2.encode_client_message(v2.CALL_REDUCER, 4, 0, "set_name", ENCODE_STR("x" * rng.randrange(10))),
        v2.encode_client_message(v2.CALL_PROCEDURE, 5, 0, "nothing", b""),
    ]


def fuzz_frame(rng: random.Random) -> bytes | str:
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    base = rng.choice(valid_messages(rng))
    if kind == 1:  # flip bytes
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:  # truncate
        return base[: rng.randrange(1, len(base))]
    if kind == 3:  # trailing garbage or a second message (valid in v3)
        return base + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    if kind == 4:  # absurd lengths
        return bytes([rng.randrange(5)]) + b"\xff\xff\xff\x7f" * rng.randint(1, 4)
    return "text frames are not part of a binary protocol"


def valid_json_messages(rng: random.Random) -> list[str]:
    args = json.dumps(["fuzz " * rng.randrange(3)])
    messages = [
        {
            "CallReducer": {
                "reducer": "send_message",
                "args": args,
                "request_id": rng.randrange(1 << 31),
                "flags": 0,
            }
        },
        {"Subscribe": {"query_strings": ["SELECT * FROM message"], "request_id": rng.randrange(1000)}},
        {"OneOffQuery": {"message_id": f"m{rng.randrange(1000)}", "query_string": "SELECT * FROM user"}},
        {"SubscribeMulti": {"query_strings": ["SELECT * FROM user"], "request_id": 1, "query_id": {"id": 5}}},
    ]
    return [json.dumps(message) for message in messages]


def fuzz_json_frame(rng: random.Random) -> bytes | str:
    """A v1.json frame: valid, mangled, truncated, deeply nested, of the wrong type, or binary."""
    kind = rng.randrange(7)
    base = rng.choice(valid_json_messages(rng))
    if kind == 0:  # change characters
        text = list(base)
        for _ in range(rng.randint(1, 4)):
            text[rng.randrange(len(text))] = chr(rng.randrange(32, 127))
        return "".join(text)
    if kind == 1:
        return base[: rng.randrange(1, len(base))]
    if kind == 2:  # nested far too deep
        depth = rng.choice([100, 10_000, 100_000])
        return "[" * depth + "]" * depth
    if kind == 3:
        return json.dumps(rng.choice([[], 1, "x", None, {"a": 1, "b": 2}, {"CallReducer": []}]))
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 32)))
    return base  # valid: served


async def fuzzer(
    url: str, rng: random.Random, frames: int, protocols: tuple[str, ...] = BINARY, token: str | None = None
) -> tuple[int, int]:
    """Send ``frames`` frames, each followed by a probe query whose answer proves the frame was processed (or
    the close proves it was refused); reconnects whenever the server closes. Returns (connections, closes).
    With ``token`` every connection is the same client identity (the chat module keeps a row per identity)."""
    connections = closes = 0
    probe_id = 1 << 31
    async with aiohttp.ClientSession() as http:
        sent = 0
        while sent < frames:
            connections += 1
            protocol = rng.choice(protocols)
            ws = await http.ws_connect(
                f"{url}/v1/database/chat/subscribe?compression=None".replace("http", "ws", 1),
                protocols=[protocol],
                max_msg_size=0,
                headers={"Authorization": f"Bearer {token}"} if token else {},
            )
            await ws.receive()  # InitialConnection
            json_protocol = protocol == PROTOCOL_V1_JSON
            while sent < frames:
                frame = fuzz_json_frame(rng) if json_protocol else fuzz_frame(rng)
                sent += 1
                probe_id += 1
                try:
                    await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))
                    await _send_probe(ws, probe_id, json_protocol)
                except (ConnectionResetError, aiohttp.ClientError):
                    closes += 1
                    break
                if not await _answered(ws, probe_id, json_protocol):
                    closes += 1
                    break
            await ws.close()
    return connections, closes


async def _send_probe(ws: aiohttp.ClientWebSocketResponse, probe_id: int, json_protocol: bool) -> None:
    if json_protocol:
        await ws.send_str(
            json.dumps({"OneOffQuery": {"message_id": f"probe {probe_id}", "query_string": PROBE_QUERY}})
        )
    else:
        await ws.send_bytes(v2.encode_client_message(v2.ONE_OFF_QUERY, probe_id, PROBE_QUERY))


async def _answered(ws: aiohttp.ClientWebSocketResponse, probe_id: int, json_protocol: bool = False) -> bool:
    """True once the probe's answer arrives; False if the server closed the connection first."""
    while True:
        message = await asyncio.wait_for(ws.receive(), 20)
        if json_protocol:
            if message.type != aiohttp.WSMsgType.TEXT:
                return False
            answer = json.loads(message.data).get("OneOffQueryResponse")
            if answer is not None and answer["message_id"] == f"probe {probe_id}":
                return True
            continue
        if message.type != aiohttp.WSMsgType.BINARY:
            return False
        for decoded in v2.decode_server_messages(v2.split_server_frame(message.data)):
            if decoded.tag == v2.ONE_OFF_QUERY_RESULT and decoded.value[0] == probe_id:
                return True


async def well_behaved(url: str, stop: asyncio.Event) -> list[str]:
    """Keep sending messages and checking each round trip while the fuzzer runs."""
    sent: list[str] = []
    async with aiohttp.ClientSession() as http:
        client, _ = await RawClient.connect(http, url, "chat")
        await client.subscribe(7, "SELECT * FROM message WHERE text = 'from the good client'")
        await client.next_of(v2.SUBSCRIBE_APPLIED)
        while not stop.is_set() or len(sent) < 5:
            rid = await client.call("send_message", ENCODE_STR("from the good client"))
            result = await client.next_of(v2.REDUCER_RESULT, timeout=20)
            assert result.value[0] == rid and result.value[2].tag == v2.OUTCOME_OK
            rows = update_rows(result.value[2].value[1])["message"][0]
            assert [MESSAGE.decode(r)[3] for r in rows] == ["from the good client"]
            sent.append("from the good client")
            await asyncio.sleep(0.05)
        await client.ws.close()
    return sent


def query_rows(url: str, token: str) -> list:
    async def go():
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{url}/v1/database/chat/sql",
                data="SELECT * FROM message",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status == 200
            return sorted(map(tuple, (await response.json())[0]["rows"]))

    return asyncio.run(go())


def test_fuzzed_frames_do_not_hurt_the_server(tmp_path):
    server = start_server(tmp_path / "data")
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                token = await publish(http, server.url)
            stop = asyncio.Event()
            good = asyncio.create_task(well_behaved(server.url, stop))
            connections, closes = await fuzzer(server.url, random.Random(1234), FRAMES)
            stop.set()
            sent = await good
            return token, connections, closes, sent

        token, connections, closes, sent = asyncio.run(scenario())
        print(
            f"fuzz: {FRAMES} frames over {connections} connections, {closes} closed by the server, {len(sent)} good calls"
        )
        # most frames are invalid and get the connection closed; some mutations stay valid and are served
        assert FRAMES // 3 < closes < FRAMES
        before = query_rows(server.url, token)
        assert sum(1 for r in before if r[3] == "from the good client") == len(sent)
        assert server.stop() == 0
        server = start_server(tmp_path / "data")
        assert query_rows(server.url, token) == before
    finally:
        if server.process.poll() is None:
            server.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fuzzing_at_scale_keeps_the_servers_memory_flat(tmp_path):
    """30,000 frames over v1.json, v2 and v3 from several fuzzers at once: the server keeps serving, and its
    resident memory afterwards is within 1.5x of before (nothing a bad frame leaves behind accumulates)."""
    server = start_server(tmp_path / "data")
    fuzzers = 8
    try:

        async def warm_up() -> tuple[str, str]:
            async with aiohttp.ClientSession() as http:
                owner = await publish(http, server.url)
                response = await http.post(f"{server.url}/v1/identity")
                stranger = (await response.json())["token"]
            await fuzzer(server.url, random.Random(7), 200, ALL_PROTOCOLS, stranger)
            return owner, stranger

        async def scenario(token: str) -> tuple[list[tuple[int, int]], list[str]]:
            stop = asyncio.Event()
            good = asyncio.create_task(well_behaved(server.url, stop))
            results = await asyncio.gather(
                *(
                    fuzzer(server.url, random.Random(seed), SCALE_FRAMES // fuzzers, ALL_PROTOCOLS, token)
                    for seed in range(fuzzers)
                )
            )
            stop.set()
            return list(results), await good

        token, stranger = asyncio.run(warm_up())
        before = rss_bytes(server.process.pid)
        results, sent = asyncio.run(scenario(stranger))
        after = rss_bytes(server.process.pid)
        connections = sum(c for c, _ in results)
        closes = sum(c for _, c in results)
        print(
            f"fuzz at scale: {SCALE_FRAMES} frames over {connections} connections, {closes} closed by the "
            f"server, {len(sent)} good calls; server RSS {before >> 20} MiB before, {after >> 20} MiB after"
        )
        assert closes > SCALE_FRAMES // 4
        assert after <= 1.5 * before
        rows = query_rows(server.url, token)
        assert sum(1 for r in rows if r[3] == "from the good client") == len(sent)
    finally:
        server.stop()
