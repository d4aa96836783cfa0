"""``ReducerContext``: what a reducer gets as its first argument."""

from __future__ import annotations

import random
from typing import Any

from spacetimedb.sats import ConnectionId, Identity, Timestamp


class ReducerContext:
    """The caller, the time and the database of one reducer call.

    - ``sender``: the identity of the caller (the database's own identity for scheduled reducers);
    - ``connection_id``: the caller's connection, or None (HTTP calls without one, scheduled and init calls);
    - ``timestamp``: when the call started;
    - ``db``: the module's tables, ``ctx.db.<table>``;
    - ``identity``: the database's own identity;
    - ``rng``: a ``random.Random`` seeded from ``timestamp``, so a call is deterministic for a given time.
    """

    __slots__ = ("_rng", "connection_id", "db", "identity", "sender", "timestamp")

    def __init__(
        self,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        db: Any,
        identity: Identity,
    ) -> None:
        self.sender = sender
        self.connection_id = connection_id
        self.timestamp = timestamp
        self.db = db
        self.identity = identity
        self._rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        # created on first use: seeding a Mersenne Twister costs more than most reducers
        if self._rng is None:
            self._rng = random.Random(self.timestamp.micros)
        return self._rng

    def __repr__(self) -> str:
        return (
            f"ReducerContext(sender={self.sender!r}, connection_id={self.connection_id!r}, "
            f"timestamp={self.timestamp!r})"
        )
