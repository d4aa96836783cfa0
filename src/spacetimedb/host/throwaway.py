"""How a throw-away worker (one that answers one first message and exits) ends."""

from __future__ import annotations

import os
from typing import Any, NoReturn

from spacetimedb.protocol import seam

from .channel import Channel

# how long a finished worker waits for the server to let it go
LINGER_SECONDS = 30.0


def answer_and_exit(channel: Channel, *messages: Any) -> NoReturn:
    """Send ``messages``, then exit once the server has read everything and lets go (it stops a worker with
    ``Shutdown``, or closes the channel): a worker that exits at once can be seen dead before its last messages
    are read."""
    if messages:
        channel.send(*messages)
    while (received := channel.receive(LINGER_SECONDS)) and not any(
        isinstance(m, seam.Shutdown) for m in received
    ):
        pass
    os._exit(0)
