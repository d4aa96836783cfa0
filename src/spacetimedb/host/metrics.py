"""What a worker counts for the server's ``/v1/metrics``: reducer calls, failures and durations, per reducer.

Counted on the host thread (every reducer runs there), read on it too (``GetMetrics`` is a host-thread job), so
no lock. Only counts and times: nothing about arguments or rows, which are the owner's business.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final

from spacetimedb.protocol import seam

_BUCKET_COUNT: Final = len(seam.DURATION_BUCKETS_SECONDS) + 1
_BUCKET_BOUNDS: Final = seam.DURATION_BUCKETS_SECONDS
_FIRST_BOUND: Final = seam.DURATION_BUCKETS_SECONDS[0]


@dataclass(slots=True)
class _Counts:
    calls: int = 0
    failures: int = 0
    duration_sum_micros: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * _BUCKET_COUNT)


class ReducerMetrics:
    def __init__(self) -> None:
        self._by_reducer: dict[str, _Counts] = {}

    def record(self, reducer: str, ok: bool, seconds: float) -> None:
        counts = self._by_reducer.get(reducer)
        if counts is None:
            counts = self._by_reducer[reducer] = _Counts()
        counts.calls += 1
        if not ok:
            counts.failures += 1
        counts.duration_sum_micros += int(seconds * 1e6)
        # most calls end within the first bound: no search (``bisect_left`` gives 0 there too)
        bucket = 0 if seconds <= _FIRST_BOUND else bisect.bisect_left(_BUCKET_BOUNDS, seconds)
        counts.buckets[bucket] += 1

    def report(self) -> tuple[seam.ReducerMetrics, ...]:
        return tuple(
            seam.ReducerMetrics(name, c.calls, c.failures, c.duration_sum_micros, tuple(c.buckets))
            for name, c in sorted(self._by_reducer.items())
        )
