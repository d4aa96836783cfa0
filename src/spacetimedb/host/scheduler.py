"""Timers for scheduled reducers.

A row in a scheduled table (``TableSchema.schedule``) asks for its reducer to run at ``ScheduleAt.time(ts)``
or every ``ScheduleAt.interval(d)`` (first run one interval after it was inserted or loaded). The scheduler keeps
a heap of due times, fed from every committed transaction's inserted rows and, on start, from every row of every
scheduled table. It never reads tables itself: when an entry is due it hands it to ``fire``, and the host then
re-reads the row in the call's transaction — a row that is gone was cancelled, a row whose ``scheduled_at``
changed was rescheduled (its new entry fires instead). So deleting the row cancels the call.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spacetimedb.datastore import TableSchema, TxData
from spacetimedb.sats import ScheduleAt, TimeDuration, Timestamp

log = logging.getLogger(__name__)


@dataclass(order=True, frozen=True, slots=True)
class DueCall:
    due_micros: int
    seq: int
    table_id: int = field(compare=False)
    scheduled_id: Any = field(compare=False)
    schedule_at: ScheduleAt = field(compare=False)


def now_micros() -> int:
    return time.time_ns() // 1000


def first_due(schedule_at: ScheduleAt, now: int) -> int:
    if schedule_at.tag == ScheduleAt.TIME:
        at: Timestamp = schedule_at.value
        return at.micros
    interval: TimeDuration = schedule_at.value
    return now + abs(interval.micros)


def next_interval_due(previous_due: int, interval: TimeDuration, now: int) -> int:
    """The first tick after ``now`` on the grid anchored at ``previous_due`` (missed ticks are skipped)."""
    step = max(1, abs(interval.micros))
    if previous_due + step > now:
        return previous_due + step
    missed = (now - previous_due) // step
    return previous_due + (missed + 1) * step


class Scheduler:
    """Owns the timer thread of one database; ``fire(call)`` runs on that thread and must not block long.

    ``clock`` gives the time in microseconds since the epoch. ``timer=False`` starts no thread: whoever owns the
    clock takes due calls with ``pop_due`` (``spacetimedb.testing`` runs a module on a clock of its own)."""

    def __init__(
        self,
        fire: Callable[[DueCall], None],
        name: str = "scheduler",
        clock: Callable[[], int] = now_micros,
        timer: bool = True,
    ) -> None:
        self._fire = fire
        self._clock = clock
        self._timer = timer
        self._heap: list[DueCall] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        if self._timer and not self._started:
            self._started = True
            self._thread.start()

    def schedule(
        self, table_id: int, scheduled_id: Any, schedule_at: ScheduleAt, due_micros: int | None = None
    ) -> None:
        due = first_due(schedule_at, self._clock()) if due_micros is None else due_micros
        call = DueCall(due, next(self._seq), table_id, scheduled_id, schedule_at)
        with self._cond:
            heapq.heappush(self._heap, call)
            if self._heap[0] is call:
                self._cond.notify()

    def load_rows(self, schema: TableSchema, rows: Iterable[tuple[Any, ...]]) -> int:
        """Schedule every row of a scheduled table (on start)."""
        assert schema.schedule is not None and schema.primary_key is not None
        pk, at = schema.primary_key, schema.schedule.at_column
        count = 0
        for row in rows:
            self.schedule(schema.table_id, row[pk], row[at])
            count += 1
        return count

    def on_commit(self, data: TxData) -> None:
        """Schedule the rows a committed transaction inserted into scheduled tables."""
        for changes in data.tables:
            schema = changes.schema
            if schema.schedule is None or not changes.inserts or schema.primary_key is None:
                continue
            pk, at = schema.primary_key, schema.schedule.at_column
            for row in changes.inserts:
                self.schedule(schema.table_id, row[pk], row[at])

    def pop_due(self, until_micros: int) -> DueCall | None:
        """The earliest call due at or before ``until_micros``, taken off the heap; None if there is none."""
        with self._cond:
            if self._heap and self._heap[0].due_micros <= until_micros:
                return heapq.heappop(self._heap)
            return None

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = (self._heap[0].due_micros - self._clock()) / 1_000_000
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 1.0))
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                call = heapq.heappop(self._heap)
            try:
                self._fire(call)
            except Exception:
                log.exception("scheduling a call of table %s failed", call.table_id)

    def clear(self) -> None:
        """Forget every pending call (a module update reloads them); the timer thread keeps running."""
        with self._cond:
            self._heap.clear()
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        if self._started and self._thread is not threading.current_thread():
            self._thread.join(5)
