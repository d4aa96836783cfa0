"""The worker's end of its channel to the server: a connected stream socket inherited at spawn.

Reading happens on the worker's main thread; any thread may send (a lock keeps messages whole). ``Outbox``
collects what the host thread produces during a batch of jobs and sends it in one write when the batch ends,
with consecutive client deliveries merged into one ``Deliveries`` message.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Any

from spacetimedb.protocol.seam import deliveries_builder, encode_to_server, to_worker_reader

_RECEIVE_BYTES = 1 << 20


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = to_worker_reader()
        self._send_lock = threading.Lock()
        self.closed = False

    def receive(self, timeout: float | None = None) -> list[Any] | None:
        """The next messages from the server (blocking; ``[]`` after ``timeout`` seconds without any); None once
        the server has closed the channel. Raises ``SeamViolation`` on anything that is not a valid message."""
        while True:
            # select, not a socket timeout: that would apply to other threads' sends too
            if timeout is not None and not select.select([self._sock], [], [], timeout)[0]:
                return []
            try:
                data = self._sock.recv(_RECEIVE_BYTES)
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                return None
            messages = self._reader.feed(data)
            if messages:
                return messages

    def send(self, *messages: Any) -> None:
        self.send_encoded(b"".join(encode_to_server(m) for m in messages))

    def send_encoded(self, data: bytes) -> None:
        if not data or self.closed:
            return
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except OSError:  # the server is gone; the main thread sees the end of the channel and exits
                self.closed = True


class Outbox:
    """Messages for the server, sent together at the end of a batch (``flush``). Host thread only (other
    threads send on the channel directly)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._encoded: list[bytes] = []
        self._deliveries = deliveries_builder()

    def deliver(self, client: int, offset: int | None, payload: bytes) -> None:
        """An encoded protocol message for a client; ``offset`` is the transaction it reflects, if any."""
        self._deliveries.add(client, offset if offset is None or offset >= 0 else None, payload)

    def frame_done(self, client: int) -> None:
        self._deliveries.frame_done(client)

    def send(self, message: Any) -> None:
        """Queue any other message, after the deliveries queued before it."""
        self._close_deliveries()
        self._encoded.append(encode_to_server(message))

    def _close_deliveries(self) -> None:
        if self._deliveries:
            self._encoded.append(self._deliveries.build())

    def flush(self) -> None:
        self._close_deliveries()
        encoded, self._encoded = self._encoded, []
        if encoded:
            self.channel.send_encoded(b"".join(encoded))
