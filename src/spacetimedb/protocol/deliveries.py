"""The layout of the worker's ``Deliveries`` message (``seam``), and its builder: compiled with the hot path,
since a worker adds one delivery for every reducer call it answers.

Owns: the structs of the message's parts and ``DeliveriesBuilder``. It knows nothing of the seam's other
messages: ``seam`` gives the builder the message's tag and size limit. May import: the standard library only.
"""

from __future__ import annotations

import struct
from typing import Final

# a framed message's length; also how many frame counts follow the items
LENGTH: Final[struct.Struct] = struct.Struct("<I")
# the message's tag, how many items
COUNT: Final[struct.Struct] = struct.Struct("<BI")
# an item without an offset: client, option tag 1 (none), payload length
ITEM_NONE: Final[struct.Struct] = struct.Struct("<QBI")
# an item with one: client, option tag 0 (some), offset, payload length
ITEM_SOME: Final[struct.Struct] = struct.Struct("<QBQI")
# client, frames done
DONE: Final[struct.Struct] = struct.Struct("<QI")


class DeliveriesBuilder:
    """Builds one framed ``Deliveries`` message item by item, with no object per item. ``build`` gives exactly
    the bytes ``seam.encode_to_server(Deliveries(...))`` would."""

    def __init__(self, tag: int, max_message_bytes: int) -> None:
        self._tag = tag
        self._max_message_bytes = max_message_bytes
        self._parts: list[bytes] = []
        self._count = 0
        self._done: dict[int, int] = {}

    def add(self, client: int, offset: int | None, payload: bytes) -> None:
        if offset is None:
            self._parts.append(ITEM_NONE.pack(client, 1, len(payload)))
        else:
            self._parts.append(ITEM_SOME.pack(client, 0, offset, len(payload)))
        self._parts.append(payload)
        self._count += 1

    def frame_done(self, client: int) -> None:
        self._done[client] = self._done.get(client, 0) + 1

    def __bool__(self) -> bool:
        return bool(self._count or self._done)

    def build(self) -> bytes:
        """The framed message; the builder starts empty again."""
        done = self._done
        parts = [COUNT.pack(self._tag, self._count), *self._parts, LENGTH.pack(len(done))]
        parts.extend(DONE.pack(client, count) for client, count in done.items())
        body = b"".join(parts)
        self._parts, self._count, self._done = [], 0, {}
        if len(body) > self._max_message_bytes:
            raise ValueError(f"a Deliveries message of {len(body)} bytes is too large")
        return LENGTH.pack(len(body)) + body
