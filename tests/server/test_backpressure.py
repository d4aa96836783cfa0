"""A client that stops reading is disconnected with a reason once its outbox is full; the server and the
other clients carry on."""

import asyncio

import aiohttp
import pytest

from spacetimedb.protocol import v2
from spacetimedb.server.app import Server, ServerOptions

from .test_e2e import publish
from .wsclient import ENCODE_STR, RawClient, SilentSubscriber

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


def test_slow_reader_is_dropped(tmp_path):
    async def scenario():
        server = Server(tmp_path / "data", ServerOptions(max_outbox_bytes=1 << 20))
        host, port = await server.start("127.0.0.1", 0)
        url = f"http://{host}:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                await publish(http, url)
                slow = await http.ws_connect(
                    f"ws://{host}:{port}/v1/database/chat/subscribe?compression=None",
                    protocols=[v2.PROTOCOL_V2],
                    max_msg_size=0,
                    autoclose=False,
                )
                await slow.receive()
                await slow.send_bytes(
                    v2.encode_client_message(v2.SUBSCRIBE, 1, (0,), ("SELECT * FROM message",))
                )
                await slow.receive()
                # shrink the socket's receive buffer so unread data backs up into the server quickly
                sock = slow._response.connection.transport.get_extra_info("socket")  # type: ignore[union-attr]
                sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
                writer, _ = await RawClient.connect(http, url, "chat")
                big = "x" * 20_000
                for _ in range(400):
                    await writer.call("send_message", ENCODE_STR(big))
                    await writer.next_of(v2.REDUCER_RESULT)
                    if any(s.closing is not None for s in server.sessions):
                        break
                (dropped,) = [s for s in server.sessions if s.closing is not None]
                assert dropped.closing[0] == 1008 and "too slow" in dropped.closing[1]
                # the server drops the connection itself (a close frame would wait behind the unread data)
                for _ in range(200):
                    if dropped not in server.sessions:
                        break
                    await asyncio.sleep(0.05)
                assert dropped not in server.sessions and dropped.transport.is_closing()
                # the writer is unaffected
                await writer.call("send_message", ENCODE_STR("still fine"))
                result = await writer.next_of(v2.REDUCER_RESULT)
                assert result.value[2].tag == v2.OUTCOME_OK
                await writer.ws.close()
                slow_ws = slow
                await slow_ws.close()
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_oversized_message_closes_only_that_connection(tmp_path):
    async def scenario():
        server = Server(tmp_path / "data", ServerOptions(max_message_bytes=64 * 1024))
        host, port = await server.start("127.0.0.1", 0)
        url = f"http://{host}:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                await publish(http, url)
                big, _ = await RawClient.connect(http, url, "chat")
                other, _ = await RawClient.connect(http, url, "chat")
                await big.call("send_message", ENCODE_STR("x" * 100_000))
                closed = await asyncio.wait_for(big.ws.receive(), 10)
                assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert big.ws.close_code == 1009  # message too big
                await other.call("send_message", ENCODE_STR("x" * 1_000))
                result = await other.next_of(v2.REDUCER_RESULT)
                assert result.value[2].tag == v2.OUTCOME_OK
                await other.ws.close()
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_slow_readers_under_a_write_load_keep_server_memory_bounded(tmp_path):
    """Ten subscribers that never read, while a writer sends 6 MB of messages each would receive: every one
    is dropped once 2 MiB wait for it, and the server's resident memory grows by less than the ten outboxes."""
    from tests.conftest import start_server
    from tests.server.test_fuzz import rss_bytes

    outbox = 2 << 20
    server = start_server(tmp_path / "data", extra_args=["--client-outbox-limit", "2MiB"])
    try:

        async def scenario() -> tuple[int, int, int]:
            async with aiohttp.ClientSession() as http:
                await publish(http, server.url)
                readers = [SilentSubscriber(server.url, "chat", "SELECT * FROM message") for _ in range(10)]
                await asyncio.sleep(0.5)  # the subscriptions are applied
                before = rss_bytes(server.process.pid)
                writer, _ = await RawClient.connect(http, server.url, "chat")
                peak = before
                for _ in range(300):  # 300 x 20 KB = 6 MB for every subscriber
                    await writer.call("send_message", ENCODE_STR("x" * 20_000))
                    await writer.next_of(v2.REDUCER_RESULT)
                    peak = max(peak, rss_bytes(server.process.pid))
                # each was dropped: reading what was sent ends in the server closing (or resetting) the socket
                dropped = sum(
                    [await asyncio.to_thread(reader.drained_until_closed, 20) for reader in readers]
                )
                for reader in readers:
                    reader.close()
                await writer.ws.close()
                return before, peak, dropped

        before, peak, dropped = asyncio.run(scenario())
        print(f"server RSS {before >> 20} MiB before, peak {peak >> 20} MiB; {dropped} slow readers dropped")
        assert dropped == 10
        assert peak - before < 10 * outbox + (40 << 20)
    finally:
        server.stop()
