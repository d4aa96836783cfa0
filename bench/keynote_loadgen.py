"""The keynote load generator: one process driving N connections, started by bench/keynote.py.

    python bench/keynote_loadgen.py CONFIG.json

It runs in its own interpreter so that it never shares the GIL with a server. Protocol (stdout/stdin lines):
it connects every connection, prints ``READY``, waits for a line on stdin, sends for ``warmup + seconds``,
stops sending, waits for the requests still in flight, and prints one JSON line with its counts. Its
connections may each have their own path (several databases of our server driven at once); committed
requests are then also counted per path.

It is written to be cheap per request, since it shares 2 cores with the server it measures:
  * plain ``asyncio.Protocol`` callbacks on uvloop, no coroutine or future per request;
  * every request is encoded before the run starts (a pool of BSATN ``CallReducer`` messages carrying their
    pool index as request id, or JSON bodies behind a pre-built HTTP header);
  * WebSocket frames are masked with the all-zero key (RFC 6455 requires client frames to be masked but lets
    the client pick any key; zero makes masking the identity, so no per-byte work), and in v3 all calls sent
    together go in one frame, as the official SDKs coalesce them;
  * replies are not decoded: for a ``ReducerResult`` only the request id and outcome tag are read (generic
    decoding only for anything else); HTTP responses only by status line and Content-Length;
  * latency (send -> reply) goes into a 10 µs-bucket histogram list, completions into a per-second list.
Its CPU time during the measured window is reported so that readers can judge what it cost.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from keynote_workload import call_transfer_message, read_pairs, transfer_json
from spacetimedb.protocol import v2
from spacetimedb.sats import codec

BUCKET_SECONDS = 1e-5  # histogram resolution: 10 µs
BUCKETS_PER_SECOND = 100_000
HISTOGRAM_BUCKETS = 2 * BUCKETS_PER_SECOND  # up to 2 s; slower replies are kept exactly in `overflow`

_U32 = struct.Struct("<I")
_U16_BE = struct.Struct(">H")
_U64_BE = struct.Struct(">Q")
_ZERO_MASK = b"\x00\x00\x00\x00"
_SERVER_MESSAGE = codec(v2.SERVER_MESSAGE)

# ReducerOutcome tags
OK, OK_EMPTY, ERR, INTERNAL_ERROR = (
    v2.OUTCOME_OK,
    v2.OUTCOME_OK_EMPTY,
    v2.OUTCOME_ERR,
    v2.OUTCOME_INTERNAL_ERROR,
)


@dataclass(frozen=True)
class Config:
    kind: str  # "ws" (our server) or "http" (a peer)
    host: str
    port: int
    path: str  # WebSocket path with query, or the HTTP POST path
    token: str
    connections: int
    window: int  # requests in flight per connection: 1 = closed loop
    warmup: float
    seconds: int
    pairs_path: str
    process_index: int
    process_count: int
    ws_protocols: str = f"{v2.PROTOCOL_V3}, {v2.PROTOCOL_V2}"
    drain_timeout: float = 15.0
    # each connection's own path (several databases driven at once); None: every connection uses ``path``
    connection_paths: list[str] | None = None

    def __post_init__(self) -> None:
        if self.connection_paths is not None and len(self.connection_paths) != self.connections:
            raise ValueError(
                f"{len(self.connection_paths)} connection paths for {self.connections} connections"
            )

    def paths(self) -> list[str]:
        return self.connection_paths or [self.path] * self.connections


class Run:
    """State shared by one process's connections: the request pool, the clock window and the counters."""

    def __init__(self, config: Config, pool: list[bytes]) -> None:
        self.config = config
        self.pool = pool
        self.targets = sorted(set(config.paths()))  # a connection's target is its index in here
        self.cursor = 0
        self.sent = 0
        self.go = 0.0
        self.measure_start = float("inf")
        self.measure_end = float("inf")
        self.stop_sending = float("inf")
        # counts inside the measured window
        self.ok = 0
        self.refused = 0
        self.errors = 0
        # counts over the whole run, warm-up and drain included
        self.all_ok = 0
        self.all_refused = 0
        self.all_errors = 0
        self.per_second = [0] * config.seconds
        self.ok_by_target = [0] * len(self.targets)
        self.histogram = [0] * HISTOGRAM_BUCKETS
        self.overflow: list[float] = []
        self.error_samples: list[str] = []
        self.in_flight = 0
        self.drained: asyncio.Future[None] | None = None

    def record(self, now: float, sent_at: float, outcome: int, target: int) -> None:
        """One reply on a connection to ``self.targets[target]``. ``outcome``: 0 committed, 1 refused by the
        business rules, 2 error."""
        if outcome == 0:
            self.all_ok += 1
        elif outcome == 1:
            self.all_refused += 1
        else:
            self.all_errors += 1
        if self.measure_start <= now < self.measure_end:
            if outcome == 0:
                self.ok += 1
                self.ok_by_target[target] += 1
                self.per_second[int(now - self.measure_start)] += 1
            elif outcome == 1:
                self.refused += 1
            else:
                self.errors += 1
            bucket = int((now - sent_at) * BUCKETS_PER_SECOND)
            if bucket < HISTOGRAM_BUCKETS:
                self.histogram[bucket] += 1
            else:
                self.overflow.append(now - sent_at)

    def take(self, count: int) -> tuple[int, int]:
        """Reserve ``count`` consecutive pool entries (wrapping): (first index, count)."""
        first = self.cursor
        self.cursor = (first + count) % len(self.pool)
        self.sent += count
        self.in_flight += count
        return first, count

    def settle(self, count: int) -> None:
        self.in_flight -= count
        if self.in_flight == 0 and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def error(self, message: str) -> None:
        if len(self.error_samples) < 5:
            self.error_samples.append(message[:300])


# ---- our server: WebSocket, v3 (batched) or v2 --------------------------------------------------------------


def _client_frame_header(length: int) -> bytes:
    """Header of a final binary frame of ``length`` bytes, masked with the zero key."""
    if length < 126:
        return bytes((0x82, 0x80 | length)) + _ZERO_MASK
    if length < 65_536:
        return b"\x82\xfe" + _U16_BE.pack(length) + _ZERO_MASK
    return b"\x82\xff" + _U64_BE.pack(length) + _ZERO_MASK


class WsConnection(asyncio.Protocol):
    def __init__(self, run: Run, ready: asyncio.Future[None], path: str) -> None:
        self.run = run
        self.ready = ready
        self.path = path
        self.target = run.targets.index(path)
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshaking = True
        self.batched = False
        self.pending: dict[int, float] = {}
        self.window = run.config.window
        self.closed = False

    # -- connection and handshake --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        config = self.run.config
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {config.host}:{config.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {config.ws_protocols}\r\n"
            f"Authorization: Bearer {config.token}\r\n\r\n"
        )
        transport.write(request.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection closed during the handshake: {exc}"))
        if self.pending:
            self.run.error(f"connection lost with {len(self.pending)} calls in flight: {exc}")
            self.run.settle(len(self.pending))
            self.pending.clear()

    def _finish_handshake(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        status = head.split("\r\n", 1)[0]
        if " 101 " not in status + " ":
            self.ready.set_exception(ConnectionError(f"WebSocket upgrade refused: {head[:300]}"))
            return
        protocol = ""
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-protocol":
                protocol = value.strip()
        self.batched = protocol == v2.PROTOCOL_V3
        self.handshaking = False

    # -- receiving --

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.handshaking:
            self._finish_handshake()
            if self.handshaking:
                return
        now = time.perf_counter()
        size = len(buffer)
        pos = 0
        completed = 0
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = _U16_BE.unpack_from(buffer, pos + 2)[0]
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = _U64_BE.unpack_from(buffer, pos + 2)[0]
                header = 10
            end = pos + header + length
            if end > size:
                break
            first = buffer[pos]
            opcode = first & 0x0F
            if opcode == 0x2 and first & 0x80:
                if buffer[pos + header] != v2.COMPRESSION_NONE:
                    raise ValueError("compressed server frame; the generator asks for compression=None")
                completed += self._messages(buffer, pos + header + 1, end, now)
            elif opcode == 0x9:  # ping: answer with the same payload
                payload = bytes(buffer[pos + header : end])
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + _ZERO_MASK + payload)
            elif opcode == 0x8:
                self.run.error(f"server closed the WebSocket: {bytes(buffer[pos + header : end])!r}")
            elif opcode != 0xA:
                raise ValueError(f"unexpected WebSocket frame 0x{first:02x}")
            pos = end
        del buffer[:pos]
        if completed:
            self.run.settle(completed)
            self._refill(completed, now)

    def _messages(self, buffer: bytearray, pos: int, end: int, now: float) -> int:
        """Account for the messages in one frame body; returns how many calls they complete."""
        unpack_u32 = _U32.unpack_from
        pending = self.pending
        record = self.run.record
        target = self.target
        completed = 0
        while pos < end:
            if buffer[pos] != v2.REDUCER_RESULT:
                message, pos = _SERVER_MESSAGE.decode_from(buffer, pos)
                if message.tag == v2.INITIAL_CONNECTION and not self.ready.done():
                    self.ready.set_result(None)
                continue
            request_id = unpack_u32(buffer, pos + 1)[0]
            outcome = buffer[pos + 13]  # after tag u8, request_id u32, timestamp i64
            nxt = pos + 14
            if outcome == OK:
                nxt += 4 + unpack_u32(buffer, nxt)[0]  # ret_value
                if unpack_u32(buffer, nxt)[0]:  # query sets: only with subscriptions, which we never make
                    _, nxt = _SERVER_MESSAGE.decode_from(buffer, pos)
                else:
                    nxt += 4
                verdict = 0
            elif outcome == OK_EMPTY:
                verdict = 0
            else:  # Err (BSATN of the error string, in `bytes`) or InternalError (a string): both u32-prefixed
                size = unpack_u32(buffer, nxt)[0]
                text = bytes(buffer[nxt + 4 : nxt + 4 + size])
                nxt += 4 + size
                verdict = 1 if outcome == ERR else 2
                self.run.error(f"outcome {outcome}: {text[4:] if outcome == ERR else text!r}")
            record(now, pending.pop(request_id), verdict, target)
            completed += 1
            pos = nxt
        return completed

    # -- sending --

    def start(self, now: float) -> None:
        self._refill(self.window, now)

    def _refill(self, count: int, now: float) -> None:
        run = self.run
        if now >= run.stop_sending or self.closed:
            return
        first, count = run.take(count)
        pool = run.pool
        pending = self.pending
        size = len(pool)
        if count == 1:
            pending[first] = now
            message = pool[first]
            self.transport.write(_client_frame_header(len(message)) + message)  # type: ignore[union-attr]
            return
        messages = []
        for index in range(first, first + count):
            index %= size
            pending[index] = now
            messages.append(pool[index])
        if self.batched:
            body = b"".join(messages)
            self.transport.write(_client_frame_header(len(body)) + body)  # type: ignore[union-attr]
        else:
            self.transport.write(b"".join(_client_frame_header(len(m)) + m for m in messages))  # type: ignore[union-attr]


# ---- the peers: HTTP/1.1 keep-alive (pipelined when window > 1) -------------------------------------------------


class HttpConnection(asyncio.Protocol):
    def __init__(self, run: Run, ready: asyncio.Future[None], path: str) -> None:
        self.run = run
        self.ready = ready
        self.target = run.targets.index(path)
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at: deque[float] = deque()  # HTTP/1.1 answers in request order
        self.window = run.config.window
        self.closed = False
        config = run.config
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {config.host}:{config.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.sent_at:
            self.run.error(f"connection lost with {len(self.sent_at)} requests in flight: {exc}")
            self.run.settle(len(self.sent_at))
            self.sent_at.clear()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        now = time.perf_counter()
        record = self.run.record
        sent_at = self.sent_at
        pos = 0
        completed = 0
        while True:
            head_end = buffer.find(b"\r\n\r\n", pos)
            if head_end < 0:
                break
            head = bytes(buffer[pos:head_end]).lower()
            start = head.find(b"content-length:")
            if start < 0:
                raise ValueError(f"response without Content-Length: {head[:200]!r}")
            stop = head.find(b"\r\n", start)
            length = int(head[start + 15 : stop if stop >= 0 else len(head)])
            end = head_end + 4 + length
            if end > len(buffer):
                break
            status = head[9:12]
            if status == b"200":
                verdict = 0
            else:
                verdict = 1 if status == b"409" else 2
                self.run.error(f"HTTP {status.decode()}: {bytes(buffer[head_end + 4 : end])[:200]!r}")
            record(now, sent_at.popleft(), verdict, self.target)
            completed += 1
            pos = end
        del buffer[:pos]
        if completed:
            self.run.settle(completed)
            self._refill(completed, now)

    def start(self, now: float) -> None:
        self._refill(self.window, now)

    def _refill(self, count: int, now: float) -> None:
        run = self.run
        if now >= run.stop_sending or self.closed:
            return
        first, count = run.take(count)
        pool = run.pool
        size = len(pool)
        head = self.head
        requests = []
        for index in range(first, first + count):
            body = pool[index % size]
            requests.append(head + b"%d\r\n\r\n" % len(body) + body)
            self.sent_at.append(now)
        self.transport.write(requests[0] if count == 1 else b"".join(requests))  # type: ignore[union-attr]


# ---- the process ----------------------------------------------------------------------------------------------


def build_pool(config: Config) -> list[bytes]:
    """This process's share of the pair sequence (every process_count-th pair), pre-encoded; a request's
    pool index is its request id."""
    pairs = read_pairs(Path(config.pairs_path))
    step = 2 * config.process_count
    ids = pairs[2 * config.process_index :: step], pairs[2 * config.process_index + 1 :: step]
    if config.kind == "ws":
        return [call_transfer_message(i, a, b) for i, (a, b) in enumerate(zip(*ids, strict=True))]
    return [transfer_json(a, b) for a, b in zip(*ids, strict=True)]


async def open_connections(run: Run) -> list[Any]:
    loop = asyncio.get_running_loop()
    config = run.config
    protocol_class = WsConnection if config.kind == "ws" else HttpConnection
    connections = []
    for path in config.paths():
        ready: asyncio.Future[None] = loop.create_future()
        _, connection = await loop.create_connection(
            lambda ready=ready, path=path: protocol_class(run, ready, path), config.host, config.port
        )
        await asyncio.wait_for(ready, 30)
        connections.append(connection)
    return connections


async def drive(config: Config) -> dict[str, Any]:
    run = Run(config, build_pool(config))
    loop = asyncio.get_running_loop()
    connections = await open_connections(run)
    print("READY", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)

    run.go = time.perf_counter()
    run.measure_start = run.go + config.warmup
    run.measure_end = run.stop_sending = run.measure_start + config.seconds
    run.drained = loop.create_future()
    for connection in connections:
        connection.start(run.go)
    await asyncio.sleep(max(0.0, run.measure_start - time.perf_counter()))
    cpu_start, sent_start = time.process_time(), run.sent
    await asyncio.sleep(max(0.0, run.measure_end - time.perf_counter()))
    cpu_end, sent_end = time.process_time(), run.sent
    drain_started = time.perf_counter()
    if run.in_flight:
        try:
            await asyncio.wait_for(asyncio.shield(run.drained), config.drain_timeout)
        except TimeoutError:
            run.error(f"{run.in_flight} requests still in flight {config.drain_timeout}s after the end")
    drain_seconds = time.perf_counter() - drain_started
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    return {
        "ok": run.ok,
        "ok_by_path": dict(zip(run.targets, run.ok_by_target, strict=True)),
        "refused": run.refused,
        "errors": run.errors,
        "all_ok": run.all_ok,
        "all_refused": run.all_refused,
        "all_errors": run.all_errors,
        "sent_in_window": sent_end - sent_start,
        "unfinished": run.in_flight,
        "per_second": run.per_second,
        "histogram": {str(i): n for i, n in enumerate(run.histogram) if n},
        "overflow": run.overflow,
        "cpu_seconds": cpu_end - cpu_start,
        "window_seconds": config.seconds,
        "drain_seconds": drain_seconds,
        "pool_size": len(run.pool),
        "wrapped": run.sent > len(run.pool),
        "error_samples": run.error_samples,
    }


def main() -> None:
    config = Config(**json.loads(Path(sys.argv[1]).read_text()))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        result = asyncio.run(drive(config))
    else:
        result = uvloop.run(drive(config))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
