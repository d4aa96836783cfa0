"""A minimal raw WebSocket client of our protocol for server tests (the SDK is tested elsewhere)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from spacetimedb.protocol import v2
from spacetimedb.sats import STRING, SumValue, codec

ENCODE_STR = codec(STRING).encode


class RawClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.pending: list[Any] = []
        self.request_id = 0

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        database: str,
        protocols: tuple[str, ...] = (v2.PROTOCOL_V3, v2.PROTOCOL_V2),
        token: str | None = None,
        query: str = "compression=None",
    ) -> tuple[RawClient, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        ws = await session.ws_connect(
            f"{url}/v1/database/{database}/subscribe?{query}".replace("http", "ws", 1),
            protocols=protocols,
            headers=headers,
        )
        client = cls(ws, ws.protocol or "")
        first = await client.next()
        return client, first

    async def next(self, timeout: float = 10.0) -> Any:
        while not self.pending:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            if message.type == aiohttp.WSMsgType.BINARY:
                self.pending.extend(v2.decode_server_messages(v2.split_server_frame(message.data)))
            elif message.type == aiohttp.WSMsgType.TEXT:
                self.pending.append(json.loads(message.data))
            else:
                raise ConnectionError(f"socket ended: {message.type} {message.data!r} {message.extra!r}")
        return self.pending.pop(0)

    async def next_of(self, tag: int, timeout: float = 10.0) -> SumValue:
        while True:
            message = await self.next(timeout)
            if message.tag == tag:
                return message

    def _rid(self) -> int:
        self.request_id += 1
        return self.request_id

    async def send(self, tag: int, *fields: Any) -> None:
        await self.ws.send_bytes(v2.encode_client_message(tag, *fields))

    async def subscribe(self, query_set_id: int, *queries: str) -> int:
        rid = self._rid()
        await self.send(v2.SUBSCRIBE, rid, (query_set_id,), tuple(queries))
        return rid

    async def call(self, reducer: str, args: bytes) -> int:
        rid = self._rid()
        await self.send(v2.CALL_REDUCER, rid, 0, reducer, args)
        return rid


def table_rows(query_rows: Any) -> dict[str, list[bytes]]:
    """QueryRows (decoded) -> {table: [row bytes]}."""
    out: dict[str, list[bytes]] = {}
    for name, row_list in query_rows[0]:
        out.setdefault(name, []).extend(v2.decode_row_list(row_list))
    return out


def update_rows(transaction_update: Any) -> dict[str, tuple[list[bytes], list[bytes]]]:
    """TransactionUpdate (decoded) -> {table: (inserts, deletes)} over every query set."""
    out: dict[str, tuple[list[bytes], list[bytes]]] = {}
    for _, tables in transaction_update[0]:
        for name, entries in tables:
            inserts, deletes = out.setdefault(name, ([], []))
            for entry in entries:
                ins, dels = entry.value
                inserts.extend(v2.decode_row_list(ins))
                deletes.extend(v2.decode_row_list(dels))
    return out


class SilentSubscriber:
    """A v2 client on a bare socket that subscribes and then never reads: unlike aiohttp's client, which keeps
    reading into memory, it leaves what the server sends in the kernel's (small) buffers, as a stalled client does."""

    def __init__(self, url: str, database: str, query: str) -> None:
        import base64
        import os
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )  # before connect, so the window stays small
        self.sock.settimeout(10)
        self.sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /v1/database/{database}/subscribe?compression=None HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {v2.PROTOCOL_V2}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "the server closed the connection during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        self._send_binary(v2.encode_client_message(v2.SUBSCRIBE, 1, (0,), (query,)))

    def _send_binary(self, payload: bytes) -> None:
        import os
        import struct

        mask = os.urandom(4)
        size = len(payload)
        header = bytes([0x82]) + (
            bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
        )
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def drained_until_closed(self, timeout: float) -> bool:
        """Read everything the server sent; True if the server ended the connection within ``timeout`` s."""
        import time

        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(1 << 16):
                    return True
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()
