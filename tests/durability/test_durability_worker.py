"""The durability worker: offsets, durable offset, group commit, failures, shutdown."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from spacetimedb.commitlog import CommitlogOptions, commits_from, transactions_from
from spacetimedb.durability import (
    Durability,
    DurabilityClosedError,
    DurabilityFailedError,
    DurabilityOptions,
)

SMALL = DurabilityOptions(commitlog=CommitlogOptions(max_segment_size=4096, offset_index_interval_bytes=256))


class GatedFsync:
    """An fsync that blocks until released, so a test can hold the worker in the middle of a batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10), "test never released the fsync"
        os.fdatasync(fd)


def test_append_returns_dense_offsets_and_everything_becomes_durable(tmp_path):
    with Durability.open(tmp_path, SMALL) as durability:
        assert durability.durable_offset() is None
        offsets = [durability.append_tx(b"tx %d" % i) for i in range(500)]
        assert offsets == list(range(500))
        assert durability.next_offset == 500
        assert durability.wait_durable(499, timeout=10)
        assert durability.durable_offset() == 499
        assert durability.commit_count == 500
        assert durability.fsync_count == durability.batch_count <= 500
    assert [p for _, p in transactions_from(tmp_path)] == [b"tx %d" % i for i in range(500)]


def test_durable_offset_survives_reopen(tmp_path):
    with Durability.open(tmp_path, SMALL) as durability:
        for i in range(10):
            durability.append_tx(b"%d" % i)
    with Durability.open(tmp_path, SMALL) as durability:
        assert durability.durable_offset() == 9
        assert durability.append_tx(b"next") == 10
        assert durability.wait_durable(10, timeout=10)
        assert [p for _, p in durability.transactions_from(9)] == [b"9", b"next"]


def test_append_returns_before_the_fsync(tmp_path):
    with Durability.open(tmp_path / "init", SMALL):
        pass
    gate = GatedFsync()
    durability = Durability.open(tmp_path / "init", SMALL, fsync=gate)
    try:
        first = durability.append_tx(b"first")
        assert gate.entered.wait(10)
        # The worker is stuck in fsync; appends still return immediately with the next offsets.
        assert [durability.append_tx(b"more") for _ in range(5)] == [1, 2, 3, 4, 5]
        assert durability.durable_offset() is None
        assert durability.wait_durable(first, timeout=0.01) is False
    finally:
        gate.release.set()
        assert durability.close() == 5


def test_listeners_see_every_durable_offset_in_order(tmp_path):
    seen: list[int] = []
    with Durability.open(tmp_path, SMALL) as durability:
        durability.add_durable_listener(seen.append)
        for i in range(300):
            durability.append_tx(b"x" * (i % 50))
        assert durability.wait_durable(299, timeout=10)
    assert seen == sorted(set(seen))
    assert seen[-1] == 299
    assert len(seen) == durability.fsync_count


def test_listener_errors_do_not_stop_the_worker(tmp_path, caplog):
    def broken(offset: int) -> None:
        raise RuntimeError("listener bug")

    seen: list[int] = []
    with Durability.open(tmp_path, SMALL) as durability:
        durability.add_durable_listener(broken)
        durability.add_durable_listener(seen.append)
        durability.append_tx(b"a")
        assert durability.wait_durable(0, timeout=10)
        durability.remove_durable_listener(broken)
        durability.append_tx(b"b")
        assert durability.wait_durable(1, timeout=10)
        assert durability.failed is None
    assert seen[-1] == 1
    assert "listener bug" in caplog.text


def test_group_commit_batches_concurrent_writers(tmp_path):
    """8 threads doing append + wait: every fsync covers several transactions."""

    def slow_disk(fd: int) -> None:
        time.sleep(0.002)  # models a device with 2 ms flush latency, not synchronisation
        os.fdatasync(fd)

    writers, per_writer = 8, 60
    with Durability.open(tmp_path, SMALL, fsync=slow_disk) as durability:
        fsyncs_at_start = durability.fsync_count

        def writer(n: int) -> None:
            for i in range(per_writer):
                offset = durability.append_tx(b"writer %d tx %d" % (n, i))
                assert durability.wait_durable(offset, timeout=30)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fsyncs = durability.fsync_count - fsyncs_at_start
        assert durability.commit_count == writers * per_writer
    # With 8 writers each waiting for its own transaction, a batch holds ~8 transactions.
    assert fsyncs * 3 <= writers * per_writer, f"{fsyncs} fsyncs for {writers * per_writer} transactions"
    assert len(list(transactions_from(tmp_path))) == writers * per_writer


def test_close_flushes_everything_queued(tmp_path):
    durability = Durability.open(tmp_path, SMALL)
    for i in range(2000):
        durability.append_tx(b"%06d" % i)
    assert durability.close() == 1999
    assert durability.close() == 1999  # idempotent
    assert [p for _, p in transactions_from(tmp_path)] == [b"%06d" % i for i in range(2000)]


def test_append_after_close_raises(tmp_path):
    durability = Durability.open(tmp_path, SMALL)
    durability.close()
    with pytest.raises(DurabilityClosedError):
        durability.append_tx(b"late")
    with pytest.raises(DurabilityFailedError):  # DurabilityClosedError is a DurabilityFailedError
        durability.append_tx(b"late")
    assert durability.wait_durable(5, timeout=1) is False


def _failing_after(good: int, error: OSError):
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > good:
            raise error
        os.fdatasync(fd)

    return fsync


def test_fsync_failure_marks_the_durability_failed(tmp_path):
    with Durability.open(tmp_path, SMALL):  # creating the log fsyncs the first segment header
        pass
    failures: list[BaseException] = []
    seen: list[int] = []
    error = OSError(errno.EIO, "Input/output error")
    durability = Durability.open(tmp_path, SMALL, fsync=_failing_after(1, error))
    durability.set_failure_handler(failures.append)
    durability.add_durable_listener(seen.append)
    assert durability.wait_durable(durability.append_tx(b"durable"), timeout=10)
    doomed = durability.append_tx(b"never durable")
    with pytest.raises(DurabilityFailedError) as info:
        durability.wait_durable(doomed, timeout=10)
    assert info.value.__cause__ is error
    assert durability.failed is error
    assert failures == [error]
    assert seen == [0]
    assert durability.durable_offset() == 0
    with pytest.raises(DurabilityFailedError, match="Input/output error"):
        durability.append_tx(b"refused")
    late: list[BaseException] = []
    durability.set_failure_handler(late.append)  # registered after the fact: told at once
    assert late == [error]
    assert durability.close() == 0
    assert next(p for _, p in transactions_from(tmp_path)) == b"durable"


def test_write_failure_marks_the_durability_failed(tmp_path):
    def failing_write(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with Durability.open(tmp_path, SMALL):
        pass
    durability = Durability.open(tmp_path, SMALL, write=failing_write)
    offset = durability.append_tx(b"x")
    with pytest.raises(DurabilityFailedError):
        durability.wait_durable(offset, timeout=10)
    assert isinstance(durability.failed, OSError) and durability.failed.errno == errno.ENOSPC
    with pytest.raises(DurabilityFailedError):
        durability.append_tx(b"y")
    durability.close()


def test_queue_is_bounded_and_appenders_block_instead_of_dropping(tmp_path):
    with Durability.open(tmp_path, SMALL):
        pass
    gate = GatedFsync()
    options = DurabilityOptions(commitlog=SMALL.commitlog, queue_capacity=4)
    durability = Durability.open(tmp_path, options, fsync=gate)
    try:
        durability.append_tx(b"in flight")
        assert gate.entered.wait(10)  # the worker took it and is stuck in fsync
        for i in range(4):
            durability.append_tx(b"queued %d" % i)
        returned: list[int] = []
        blocked = threading.Thread(target=lambda: returned.append(durability.append_tx(b"fifth")))
        blocked.start()
        blocked.join(timeout=0.2)
        assert blocked.is_alive() and returned == []
        gate.release.set()
        blocked.join(timeout=10)
        assert returned == [5]
    finally:
        gate.release.set()
        assert durability.close() == 5
    assert len(list(transactions_from(tmp_path))) == 6


def test_non_bytes_payloads_are_refused_up_front(tmp_path):
    with Durability.open(tmp_path, SMALL) as durability:
        with pytest.raises(TypeError):
            durability.append_tx("text")  # type: ignore[arg-type]
        assert durability.next_offset == 0
        assert durability.failed is None


def test_wait_durable_rejects_negative_offsets(tmp_path):
    with Durability.open(tmp_path, SMALL) as durability, pytest.raises(ValueError):
        durability.wait_durable(-1)


def test_open_report_and_history_are_exposed(tmp_path):
    with Durability.open(tmp_path, SMALL) as durability:
        durability.append_tx(b"\x00")  # an empty transaction record
        assert durability.wait_durable(0, timeout=10)
        assert durability.open_report.created
        assert durability.fold_transactions(0, lambda offset, record: None) == 1
        assert durability.commitlog.next_offset == 1


def test_mutable_buffers_are_copied_at_append(tmp_path):
    buffer = bytearray(b"original")
    with Durability.open(tmp_path, SMALL) as durability:
        offset = durability.append_tx(buffer)
        buffer[:] = b"mutated!"
        assert durability.wait_durable(offset, timeout=10)
    assert [p for _, p in transactions_from(tmp_path)] == [b"original"]


def test_failure_handler_may_close_the_durability(tmp_path):
    with Durability.open(tmp_path, SMALL):
        pass
    error = OSError(errno.EIO, "Input/output error")
    durability = Durability.open(tmp_path, SMALL, fsync=_failing_after(0, error))
    closed_from_handler: list[int | None] = []
    handled = threading.Event()

    def handler(exc: BaseException) -> None:
        closed_from_handler.append(durability.close())
        handled.set()

    durability.set_failure_handler(handler)
    with pytest.raises(DurabilityFailedError):
        durability.wait_durable(durability.append_tx(b"x"), timeout=10)
    assert handled.wait(10)
    assert closed_from_handler == [None]
    assert durability.close() is None
    # The worker released the log on its way out: it can be opened again.
    with Durability.open(tmp_path, SMALL) as reopened:
        assert reopened.failed is None


def test_a_listener_may_close_the_durability(tmp_path):
    durability = Durability.open(tmp_path, SMALL)
    durability.add_durable_listener(lambda offset: durability.close())
    for i in range(100):
        try:
            durability.append_tx(b"%d" % i)
        except DurabilityClosedError:
            break
    final = durability.close()
    assert final is not None
    stored = [p for _, p in transactions_from(tmp_path)]
    assert len(stored) == final + 1  # everything accepted before the close became durable
    assert stored == [b"%d" % i for i in range(len(stored))]


def test_bound_method_listeners_can_be_removed(tmp_path):
    class Server:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_durable(self, offset: int) -> None:
            self.seen.append(offset)

    server = Server()
    with Durability.open(tmp_path, SMALL) as durability:
        durability.add_durable_listener(server.on_durable)
        assert durability.wait_durable(durability.append_tx(b"a"), timeout=10)
        durability.remove_durable_listener(server.on_durable)
        assert durability.wait_durable(durability.append_tx(b"b"), timeout=10)
    assert server.seen == [0]


def test_a_batch_is_written_as_grouped_commits(tmp_path):
    """Transactions queued during one fsync reach the log as one commit (``append_transactions``), not a
    commit each; the durable offset ends a commit, and every transaction reads back at its offset."""
    with Durability.open(tmp_path, SMALL):  # created without the gate (creating a log fsyncs)
        pass
    gate = GatedFsync()
    durability = Durability.open(tmp_path, SMALL, fsync=gate)
    try:
        durability.append_tx(b"alone")
        assert gate.entered.wait(10)  # the worker holds the first batch in its fsync
        gate.entered.clear()
        queued = [durability.append_tx(b"queued %d" % i) for i in range(40)]
        gate.release.set()
        assert durability.wait_durable(queued[-1], timeout=10)
    finally:
        gate.release.set()
        durability.close()
    commits = list(commits_from(tmp_path))
    assert [(c.min_tx_offset, len(c.records)) for c in commits] == [(0, 1), (1, 40)]
    assert [p for _, p in transactions_from(tmp_path)] == [b"alone"] + [b"queued %d" % i for i in range(40)]
