"""`Durability`: the background thread that writes and fsyncs the commitlog (group commit).

`append_tx` hands a transaction to an in-memory queue, gets the next dense offset and returns. The worker
thread waits for at least one queued transaction, takes *everything* queued, writes it in a single write call
as commits of up to `GROUP_RECORDS` consecutive transactions each (`Commitlog.append_transactions`: one
header and checksum per group), fsyncs once, and publishes the new durable offset, which therefore always
ends a commit. Batching is thus automatic: the more transactions arrive during one fsync, the more the next
fsync covers.

The durable offset is the highest offset such that it and every lower offset are on stable storage.
A write or fsync error is fatal: the durability records it as `failed`, calls the failure handler, wakes
every waiter with `DurabilityFailedError`, and refuses further appends. It never pretends that a
transaction is durable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spacetimedb.commitlog import Commitlog, CommitlogFailedError, CommitlogOptions, OpenReport, TxRecord
from spacetimedb.commitlog.format import MAX_COMMIT_PAYLOAD

from .errors import DurabilityClosedError, DurabilityFailedError

logger = logging.getLogger(__name__)

DurableListener = Callable[[int], None]
FailureHandler = Callable[[BaseException], None]


@dataclass(frozen=True)
class DurabilityOptions:
    commitlog: CommitlogOptions = field(default_factory=CommitlogOptions)
    # append_tx blocks (never drops) while this many transactions wait for the worker...
    queue_capacity: int = 16384
    # ...or while this many payload bytes do (a single larger transaction is still accepted alone).
    queue_capacity_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        if self.queue_capacity < 1 or self.queue_capacity_bytes < 1:
            raise ValueError("queue capacities must be positive")


class Durability:
    """Owns a `Commitlog` and the thread that makes appended transactions durable."""

    def __init__(self, commitlog: Commitlog, options: DurabilityOptions | None = None) -> None:
        """Wrap an already opened commitlog (normally use `Durability.open`)."""
        self.options = options or DurabilityOptions()
        self._clog = commitlog
        self._mutex = threading.Lock()
        # bound once: compiled, ``with self._mutex`` looks up ``__enter__`` and ``__exit__`` at every append
        self._lock_mutex = self._mutex.acquire
        self._unlock_mutex = self._mutex.release
        self._work_available = threading.Condition(self._mutex)
        self._space_available = threading.Condition(self._mutex)
        self._durable_changed = threading.Condition(self._mutex)
        self._queue: list[bytes] = []
        self._queued_bytes = 0
        self._worker_idle = False
        self._blocked_appenders = 0
        self._next_offset = commitlog.next_offset
        self._durable: int | None = commitlog.next_offset - 1 if commitlog.next_offset else None
        self._failure: BaseException | None = None
        # Set once the failure handler has run; only then do waiters see the failure.
        self._failure_reported = False
        self._closing = False
        self._stopped = False
        self._listeners: list[DurableListener] = []
        self._failure_handler: FailureHandler | None = None
        self.fsync_count = 0
        self.commit_count = 0
        self.batch_count = 0
        self._worker_thread = threading.Thread(
            target=self._run, name=f"durability:{commitlog.directory}", daemon=True
        )
        self._worker_thread.start()

    @classmethod
    def open(
        cls,
        clog_dir: Path | str,
        options: DurabilityOptions | None = None,
        *,
        fsync: Callable[[int], None] = os.fdatasync,
        write: Callable[[int, bytes | memoryview], int] = os.write,
    ) -> Durability:
        """Open the commitlog in `clog_dir` (repairing a torn tail, see `open_report`) and start the worker.

        `fsync` and `write` stand in for `os.fdatasync` / `os.write` on segment data; any exception they
        raise marks the durability failed.
        """
        options = options or DurabilityOptions()
        commitlog = Commitlog.open(clog_dir, options.commitlog, fsync=fsync, write=write)
        return cls(commitlog, options)

    # -----------------------------------------------------------------------------------------------
    # Producer side

    def append_tx(self, payload: bytes | bytearray | memoryview) -> int:
        """Queue one transaction and return its offset at once (blocks only while the queue is full)."""
        if isinstance(payload, bytes):
            record = payload
        elif isinstance(payload, bytearray | memoryview):
            record = bytes(payload)  # the caller may reuse its buffer before the worker writes it
        else:
            raise TypeError(f"transaction payload must be bytes, got {type(payload).__name__}")
        size = len(record)
        if size > MAX_COMMIT_PAYLOAD:
            raise ValueError(f"transaction of {size} bytes exceeds the commit limit of {MAX_COMMIT_PAYLOAD}")
        self._lock_mutex()
        try:
            if self._failure is not None or self._closing or not self._has_room(size):
                self._wait_for_room(size)
            offset = self._next_offset
            self._next_offset = offset + 1
            self._queue.append(record)
            self._queued_bytes += size
            if self._worker_idle:
                self._work_available.notify()
            return offset
        finally:
            self._unlock_mutex()

    def _has_room(self, size: int) -> bool:
        queue = self._queue
        return not queue or (
            len(queue) < self.options.queue_capacity
            and self._queued_bytes + size <= self.options.queue_capacity_bytes
        )

    def _wait_for_room(self, size: int) -> None:
        """Called with the mutex held; returns with it held once appending is allowed."""
        while True:
            self._raise_if_unusable()
            if self._has_room(size):
                return
            if threading.current_thread() is self._worker_thread:
                raise RuntimeError("append_tx from a durable listener would wait for itself on a full queue")
            self._blocked_appenders += 1
            try:
                self._space_available.wait()
            finally:
                self._blocked_appenders -= 1

    def _raise_if_unusable(self) -> None:
        if self._failure is not None:
            error = DurabilityFailedError(f"durability of {self._clog.directory} failed: {self._failure!r}")
            # (``raise ... from`` loses the cause when this module is compiled by mypyc)
            error.__cause__ = self._failure
            raise error
        if self._closing:
            raise DurabilityClosedError(f"durability of {self._clog.directory} is closed")

    @property
    def next_offset(self) -> int:
        """The offset the next `append_tx` will return."""
        return self._next_offset

    # -----------------------------------------------------------------------------------------------
    # Durable offset

    def durable_offset(self) -> int | None:
        """Highest offset known to be on stable storage (with all before it); None if there is none."""
        return self._durable

    def wait_durable(self, offset: int, timeout: float | None = None) -> bool:
        """Block until `offset` is durable: True when it is, False on timeout (or if the durability was
        closed before that offset was ever appended). Raises `DurabilityFailedError` if it failed first.
        """
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        durable = self._durable
        if durable is not None and durable >= offset:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            while True:
                durable = self._durable
                if durable is not None and durable >= offset:
                    return True
                if self._failure_reported:
                    self._raise_if_unusable()
                if self._stopped:
                    return False
                if deadline is None:
                    self._durable_changed.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._durable_changed.wait(remaining)

    def add_durable_listener(self, callback: DurableListener) -> None:
        """Call `callback(durable_offset)` from the worker thread after every fsync.

        Keep it short and non-blocking (e.g. `loop.call_soon_threadsafe`): it delays the next batch.
        Exceptions it raises are logged and otherwise ignored.
        """
        with self._mutex:
            self._listeners = [*self._listeners, callback]

    def remove_durable_listener(self, callback: DurableListener) -> None:
        with self._mutex:
            # Equality, not identity: every access to a bound method creates a new (equal) object.
            self._listeners = [listener for listener in self._listeners if listener != callback]

    def set_failure_handler(self, callback: FailureHandler | None) -> None:
        """Call `callback(exception)` once, from the worker thread, when the durability fails.

        If it has failed already the callback runs right away, in the caller's thread.
        """
        with self._mutex:
            self._failure_handler = callback
            failure = self._failure
        if failure is not None and callback is not None:
            self._call_failure_handler(callback, failure)

    @property
    def failed(self) -> BaseException | None:
        """The exception that made the durability fail, if it did."""
        return self._failure

    @property
    def closed(self) -> bool:
        return self._closing

    # -----------------------------------------------------------------------------------------------
    # Worker

    def _run(self) -> None:
        try:
            while True:
                batch = self._take_batch()
                if batch is None:
                    return
                durable = self._write_batch(batch)
                if durable is None:
                    return
                self._publish(durable, len(batch))
        finally:
            with self._mutex:
                closing = self._closing
            if closing:
                # close() may have been called from a listener or the failure handler, i.e. on this
                # thread, where it cannot wait for the drain: the worker closes the log itself.
                self._close_commitlog()
            with self._mutex:
                self._stopped = True
                self._durable_changed.notify_all()
                self._space_available.notify_all()

    def _take_batch(self) -> list[bytes] | None:
        """Everything queued, once there is something; None when closing with nothing left."""
        with self._mutex:
            while not self._queue:
                if self._closing:
                    return None
                self._worker_idle = True
                self._work_available.wait()
                self._worker_idle = False
            batch, self._queue, self._queued_bytes = self._queue, [], 0
            if self._blocked_appenders:
                self._space_available.notify_all()
            return batch

    def _write_batch(self, batch: list[bytes]) -> int | None:
        """Write and fsync; return the new durable offset, or None after marking the durability failed."""
        clog = self._clog
        expected_first = clog.next_offset
        try:
            first = clog.append_transactions(batch)
            if first != expected_first:
                raise AssertionError(f"commitlog assigned offset {first}, queue expected {expected_first}")
            clog.sync()
        except CommitlogFailedError as exc:
            self._fail(exc.__cause__ or exc)  # report the I/O error itself, not the log's wrapper
            return None
        except BaseException as exc:
            self._fail(exc)
            return None
        return first + len(batch) - 1

    def _publish(self, durable: int, transactions: int) -> None:
        with self._mutex:
            self._durable = durable
            self.fsync_count += 1
            self.batch_count += 1
            self.commit_count += transactions
            self._durable_changed.notify_all()
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(durable)
            except Exception:
                logger.exception("durable-offset listener %r raised", listener)

    def _fail(self, exc: BaseException) -> None:
        """Record the failure (appends refuse from now on), tell the failure handler, then wake waiters:
        by the time a waiter sees `DurabilityFailedError`, the handler has run."""
        with self._mutex:
            if self._failure is None:
                self._failure = exc
            lost = len(self._queue)
            self._queue, self._queued_bytes = [], 0
            handler = self._failure_handler
        logger.error(
            "durability of %s failed (durable offset stays %s; %d queued transactions will never be durable): %r",
            self._clog.directory,
            self._durable,
            lost,
            exc,
        )
        if handler is not None:
            self._call_failure_handler(handler, exc)
        with self._mutex:
            self._failure_reported = True
            self._durable_changed.notify_all()
            self._space_available.notify_all()

    @staticmethod
    def _call_failure_handler(handler: FailureHandler, exc: BaseException) -> None:
        try:
            handler(exc)
        except Exception:
            logger.exception("durability failure handler %r raised", handler)

    # -----------------------------------------------------------------------------------------------
    # Shutdown and history

    def close(self, timeout: float | None = None) -> int | None:
        """Stop accepting appends, make everything queued durable, stop the thread, close the log.

        Returns the final durable offset. After a failure it still stops and releases everything; check
        `failed`. Raises `TimeoutError` if the worker did not finish within `timeout` seconds. Called from
        a durable listener or the failure handler (the worker thread itself) it only starts the shutdown
        and returns the durable offset so far; the worker drains the queue and closes the log on its way
        out.
        """
        with self._mutex:
            self._closing = True
            self._work_available.notify_all()
            self._space_available.notify_all()
        if threading.current_thread() is self._worker_thread:
            return self._durable
        self._worker_thread.join(timeout)
        if self._worker_thread.is_alive():
            raise TimeoutError(f"durability worker of {self._clog.directory} did not stop within {timeout}s")
        self._close_commitlog()
        return self._durable

    def _close_commitlog(self) -> None:
        try:
            self._clog.close()  # idempotent
        except Exception as exc:
            if self._failure is None:
                self._fail(exc)

    def __enter__(self) -> Durability:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def commitlog(self) -> Commitlog:
        """The underlying log, for reading (replay); only the worker writes to it."""
        return self._clog

    @property
    def open_report(self) -> OpenReport:
        return self._clog.open_report

    def transactions_from(self, offset: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, payload) of the transactions written so far (durable or not), from `offset`."""
        return self._clog.transactions_from(offset)

    def fold_transactions(self, offset: int, visitor: Callable[[int, TxRecord], object]) -> int:
        return self._clog.fold_transactions(offset, visitor)
