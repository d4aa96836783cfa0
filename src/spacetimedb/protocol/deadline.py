"""The deadline page a worker shares with its supervisor: each lane holds the monotonic deadline of the call in
progress on one thread of the worker, and the name of what runs, so the supervisor can kill a worker whose call
overran (budget + grace) and say why.

Compiled with the hot path (``spacetimedb.native``): a reducer call arms and disarms its lane. Imports only the
standard library.
"""

from __future__ import annotations

import mmap
import struct
import time

DEADLINE_SLOT_BYTES = mmap.PAGESIZE
_DEADLINE = struct.Struct("<QB")  # monotonic deadline in ns (0 = idle), length of the work's name
_NAME_AT = _DEADLINE.size
_NAME_MAX = 200


DEADLINE_LANE_BYTES = 256
DEADLINE_LANES = DEADLINE_SLOT_BYTES // DEADLINE_LANE_BYTES


class DeadlineSlot:
    """A view of one lane of the shared deadline page (the worker writes it, the supervisor reads it). Lane 0 is
    the host thread's; each procedure thread has a lane of its own (``lane``), and ``overdue`` looks at all.

    Arming costs the worker one store per call: the name is written only when it changes, while the slot is
    disarmed (so the supervisor never pairs a deadline with a half-written name)."""

    def __init__(self, memory: mmap.mmap, lane: int = 0) -> None:
        if not 0 <= lane < DEADLINE_LANES:
            raise ValueError(f"deadline lane {lane} is not in 0..{DEADLINE_LANES - 1}")
        self._memory = memory
        self._base = lane * DEADLINE_LANE_BYTES
        self._deadline = memoryview(memory)[self._base : self._base + 8].cast("Q")
        self._named: str | None = None
        self._encoded: dict[str, bytes] = {}

    def lane(self, lane: int) -> DeadlineSlot:
        """Another lane of the same page."""
        return DeadlineSlot(self._memory, lane)

    @classmethod
    def from_fd(cls, fd: int) -> DeadlineSlot:
        return cls(mmap.mmap(fd, DEADLINE_SLOT_BYTES))

    def arm(self, seconds: float, what: str) -> None:
        self.arm_until(time.monotonic_ns() + int(seconds * 1e9), what)

    def arm_until(self, deadline_ns: int, what: str) -> None:
        """Arm with an absolute ``time.monotonic_ns()`` deadline."""
        if what != self._named:
            self._name(what)
        self._deadline[0] = deadline_ns

    def _name(self, what: str) -> None:
        name = self._encoded.get(what)
        if name is None:
            name = what.encode("utf-8", "replace")[:_NAME_MAX]
            if len(self._encoded) < 1024:  # reducer names and a few fixed ones; module code picks them
                self._encoded[what] = name
        self._deadline[0] = 0
        at = self._base + _NAME_AT
        self._memory[at - 1] = len(name)
        self._memory[at : at + len(name)] = name
        self._named = what

    def disarm(self) -> None:
        self._deadline[0] = 0

    def overdue(self, now_ns: int | None = None) -> str | None:
        """What the worker is running past its deadline, in any lane (None when nothing is)."""
        now = now_ns if now_ns is not None else time.monotonic_ns()
        for base in range(0, DEADLINE_LANES * DEADLINE_LANE_BYTES, DEADLINE_LANE_BYTES):
            deadline, length = _DEADLINE.unpack_from(self._memory, base)
            if deadline and now > deadline:
                at = base + _NAME_AT
                name = bytes(self._memory[at : at + min(length, _NAME_MAX)])
                return name.decode("utf-8", "replace") or "its work"
        return None

    def close(self) -> None:
        self._deadline.release()
        self._memory.close()
