"""Commitlog writing, reading, rotation, the offset index, reopening and repairs."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading

import pytest

from spacetimedb.commitlog import (
    Commitlog,
    CommitlogClosedError,
    CommitlogCorruptError,
    CommitlogDecodeError,
    CommitlogError,
    CommitlogFailedError,
    CommitlogLockedError,
    CommitlogOptions,
    TxInputs,
    TxRecord,
    commits_from,
    encode_tx_record,
    fold_transactions,
    inspect_log,
    transactions_from,
)
from spacetimedb.commitlog.format import INDEX_ENTRY, INDEX_HEADER_LEN, SEGMENT_HEADER_LEN, encode_commit
from spacetimedb.commitlog.index import OffsetIndex, read_index_file

from .helpers import SMALL, index_files, payload_for, read_all, segment_files, write_log


def test_new_log_is_empty(tmp_path):
    with Commitlog.open(tmp_path / "clog") as log:
        assert log.next_offset == 0
        assert log.open_report.created
        assert list(log.transactions_from(0)) == []
        assert [p.name for p in segment_files(tmp_path / "clog")] == ["00000000000000000000.stdb.log"]
        assert (tmp_path / "clog" / "00000000000000000000.stdb.log").stat().st_size == SEGMENT_HEADER_LEN


def test_append_returns_dense_offsets_and_reads_back(tmp_path):
    with Commitlog.open(tmp_path, SMALL) as log:
        assert log.append_commits([b"a", b"b", b"c"]) == 0
        assert log.append_commits([b"d"]) == 3
        assert log.append_commit([b"e", b"f"]) == 4
        assert log.append_commits([b""]) == 6
        assert log.next_offset == 7
        assert list(log.transactions_from(0)) == [
            (0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e"), (5, b"f"), (6, b""),
        ]  # fmt: skip


def test_appended_data_is_visible_to_read_only_readers_before_sync(tmp_path):
    with Commitlog.open(tmp_path, SMALL) as log:
        log.append_commits([b"x", b"y"])
        assert list(transactions_from(tmp_path)) == [(0, b"x"), (1, b"y")]


def test_reopen_continues_at_next_offset(tmp_path):
    payloads = write_log(tmp_path, 100)
    with Commitlog.open(tmp_path, SMALL) as log:
        assert log.next_offset == 100
        assert log.open_report.torn_tail is None
        assert log.open_report.indexes_rebuilt == ()
        assert log.append_commits([b"more"]) == 100
    read, log = read_all(tmp_path)
    log.close()
    assert read == [*payloads, b"more"]


def test_segments_rotate_past_the_size_limit(tmp_path):
    options = CommitlogOptions(max_segment_size=400, offset_index_interval_bytes=64)
    payloads = write_log(tmp_path, 200, options, batch=13)
    files = segment_files(tmp_path)
    assert len(files) > 5
    with Commitlog.open(tmp_path, options) as log:
        summaries = log.segments()
    assert [s.path for s in summaries] == files
    for summary, following in itertools.pairwise(summaries):
        # A segment is sealed by the commit that takes it to the limit, not one commit earlier or later.
        last_commit_size = 30 + len(payloads[summary.next_offset - 1])
        assert summary.size >= 400 > summary.size - last_commit_size
        assert int(following.path.name[:20]) == summary.next_offset == following.base_offset
    assert [p for _, p in transactions_from(tmp_path)] == payloads


def test_huge_commit_gets_a_segment_of_its_own(tmp_path):
    options = CommitlogOptions(max_segment_size=256)
    with Commitlog.open(tmp_path, options) as log:
        log.append_commits([b"small", b"x" * 1000, b"after"])
        assert [(s.base_offset, s.next_offset) for s in log.segments()] == [(0, 2), (2, 3)]
        assert [p for _, p in log.transactions_from(0)] == [b"small", b"x" * 1000, b"after"]


def test_transactions_from_every_offset(tmp_path):
    payloads = write_log(tmp_path, 120)
    with Commitlog.open(tmp_path, SMALL) as log:
        for start in range(0, 125):
            assert [o for o, _ in log.transactions_from(start)] == list(range(start, 120))
            assert [p for _, p in log.transactions_from(start)] == payloads[start:]


def test_reading_from_inside_a_multi_transaction_commit(tmp_path):
    with Commitlog.open(tmp_path, SMALL) as log:
        log.append_commits([b"0"])
        log.append_commit([b"1", b"2", b"3"])
        log.append_commits([b"4"])
        assert list(log.transactions_from(2)) == [(2, b"2"), (3, b"3"), (4, b"4")]
        commits = list(log.commits_from(2))
        assert [(c.min_tx_offset, c.records) for c in commits] == [(1, [b"1", b"2", b"3"]), (4, [b"4"])]


def test_index_is_written_sparsely_and_used_to_seek(tmp_path):
    options = CommitlogOptions(max_segment_size=1 << 20, offset_index_interval_bytes=256)
    write_log(tmp_path, 300, options)
    (segment,) = segment_files(tmp_path)
    (index_path,) = index_files(tmp_path)
    index = read_index_file(index_path, 0)
    assert len(index) > 10
    gaps = [b - a for a, b in zip(index.positions, index.positions[1:], strict=False)]
    assert all(256 <= gap < 256 + 200 for gap in gaps)
    # Proof that reading seeks: damage a commit before the last index entry. Reading from offset 0 hits
    # it; reading from an indexed offset past it does not.
    key, _ = index.last()
    data = bytearray(segment.read_bytes())
    data[SEGMENT_HEADER_LEN + 40] ^= 0x10
    segment.write_bytes(bytes(data))
    with pytest.raises(CommitlogCorruptError):
        list(transactions_from(tmp_path, 0))
    assert [o for o, _ in transactions_from(tmp_path, key + 1)] == list(range(key + 1, 300))


def test_index_entries_written_live_match_a_rebuild(tmp_path):
    write_log(tmp_path, 300)
    before = {p.name: p.read_bytes() for p in index_files(tmp_path)}
    assert len(before) > 3
    for path in index_files(tmp_path):
        path.unlink()
    with Commitlog.open(tmp_path, SMALL) as log:
        assert sorted(p.name for p in log.open_report.indexes_rebuilt) == sorted(before)
    assert {p.name: p.read_bytes() for p in index_files(tmp_path)} == before


@pytest.mark.parametrize(
    "damage",
    ["garbage_header", "partial_entry", "entries_out_of_order", "entry_points_nowhere", "empty_file"],
)
def test_corrupt_index_is_rebuilt(tmp_path, damage):
    payloads = write_log(tmp_path, 300)
    good = {p: p.read_bytes() for p in index_files(tmp_path)}
    for path, data in good.items():
        path.write_bytes(_damage_index(data, damage))
    with Commitlog.open(tmp_path, SMALL) as log:
        assert set(log.open_report.indexes_rebuilt) == set(good)
        assert [p for _, p in log.transactions_from(0)] == payloads
    assert {p: p.read_bytes() for p in index_files(tmp_path)} == good


def _damage_index(data: bytes, damage: str) -> bytes:
    entries = data[INDEX_HEADER_LEN:]
    if damage == "garbage_header":
        return b"\x00" * INDEX_HEADER_LEN + entries
    if damage == "partial_entry":
        return data + b"\x01\x02\x03"
    if damage == "entries_out_of_order":
        last = INDEX_ENTRY.pack(1, 10**9)
        return data + last
    if damage == "entry_points_nowhere":
        shifted = b"".join(INDEX_ENTRY.pack(k, p + 1) for k, p in INDEX_ENTRY.iter_unpack(entries))
        return data[:INDEX_HEADER_LEN] + shifted
    if damage == "empty_file":
        return b""
    raise AssertionError(damage)


def test_index_flipped_in_the_middle_of_a_sealed_segment_falls_back_to_scanning(tmp_path, caplog):
    payloads = write_log(tmp_path, 300)
    index_path = index_files(tmp_path)[0]
    data = bytearray(index_path.read_bytes())
    data[INDEX_HEADER_LEN + 8] ^= 0x04  # position of the first entry
    index_path.write_bytes(bytes(data))
    first_key = INDEX_ENTRY.unpack_from(data, INDEX_HEADER_LEN)[0]
    with Commitlog.open(tmp_path, SMALL) as log, caplog.at_level(logging.WARNING):
        assert [p for _, p in log.transactions_from(first_key)] == payloads[first_key:]
    assert "does not point at a valid commit" in caplog.text


def test_torn_tail_is_truncated_and_reported(tmp_path, caplog):
    payloads = write_log(tmp_path, 50)
    last = segment_files(tmp_path)[-1]
    size = last.stat().st_size
    torn_commit = encode_commit(50, 0, [b"never finished"])[:-5]
    with open(last, "ab") as file:
        file.write(torn_commit)
    with caplog.at_level(logging.WARNING), Commitlog.open(tmp_path, SMALL) as log:
        torn = log.open_report.torn_tail
        assert torn is not None
        assert (torn.segment_path, torn.byte_position, torn.bytes_truncated, torn.offset) == (
            last,
            size,
            len(torn_commit),
            50,
        )
        assert log.next_offset == 50
        assert [p for _, p in log.transactions_from(0)] == payloads
        assert log.append_commits([b"after"]) == 50
    assert last.stat().st_size == size + 30 + 5
    assert "torn tail" in caplog.text
    read, log = read_all(tmp_path)
    log.close()
    assert read == [*payloads, b"after"]


def test_zero_filled_tail_is_a_torn_tail(tmp_path):
    payloads = write_log(tmp_path, 20)
    last = segment_files(tmp_path)[-1]
    with open(last, "ab") as file:
        file.write(bytes(4096))
    with Commitlog.open(tmp_path, SMALL) as log:
        assert log.open_report.torn_tail.bytes_truncated == 4096
        assert [p for _, p in log.transactions_from(0)] == payloads


def test_read_only_traversal_stops_at_a_torn_tail_without_repairing(tmp_path, caplog):
    payloads = write_log(tmp_path, 30)
    last = segment_files(tmp_path)[-1]
    with open(last, "ab") as file:
        file.write(b"\xc3\x9f\x5b\xe1 torn")
    size = last.stat().st_size
    with caplog.at_level(logging.WARNING):
        assert [p for _, p in transactions_from(tmp_path)] == payloads
    assert "torn tail" in caplog.text
    report = inspect_log(tmp_path, SMALL)
    assert report.torn_tail is not None and report.torn_tail.offset == 30
    assert report.next_offset == 30
    assert last.stat().st_size == size


def test_corruption_before_the_tail_stops_open(tmp_path):
    write_log(tmp_path, 30, CommitlogOptions(max_segment_size=1 << 20, offset_index_interval_bytes=1 << 20))
    (segment,) = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    data[SEGMENT_HEADER_LEN + 30 + 2] ^= 0x01  # inside the payload of the first commit
    segment.write_bytes(bytes(data))
    with pytest.raises(CommitlogCorruptError) as info:
        Commitlog.open(tmp_path, SMALL)
    error = info.value
    assert error.segment_path == segment
    assert error.offset == 0 and error.byte_position == SEGMENT_HEADER_LEN
    assert "checksum mismatch" in str(error) and "valid commit follows" in str(error)
    assert str(segment) in str(error)
    # Nothing was modified and the lock was released.
    assert segment.read_bytes() == bytes(data)
    with pytest.raises(CommitlogCorruptError):
        Commitlog.open(tmp_path, SMALL)


def test_corruption_in_a_sealed_segment_is_an_error_when_read(tmp_path):
    write_log(tmp_path, 200)
    first = segment_files(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[SEGMENT_HEADER_LEN + 31] ^= 0x80
    first.write_bytes(bytes(data))
    with Commitlog.open(tmp_path, SMALL) as log, pytest.raises(CommitlogCorruptError) as info:
        list(log.transactions_from(0))
    assert info.value.segment_path == first and info.value.offset == 0
    with pytest.raises(CommitlogCorruptError):
        Commitlog.open(
            tmp_path,
            CommitlogOptions(max_segment_size=1024, offset_index_interval_bytes=128, verify_all_on_open=True),
        )


def test_torn_tail_of_a_sealed_segment_is_corruption(tmp_path):
    write_log(tmp_path, 200)
    first = segment_files(tmp_path)[0]
    with open(first, "ab") as file:
        file.write(b"\xc3\x9f\x5b\xe1 torn")
    with pytest.raises(CommitlogCorruptError, match=r"no commit magic|bytes left"):
        Commitlog.open(tmp_path, SMALL)


def test_missing_middle_segment_is_a_gap(tmp_path):
    write_log(tmp_path, 200)
    files = segment_files(tmp_path)
    files[1].unlink()
    with pytest.raises(CommitlogCorruptError, match="previous one ended at"):
        Commitlog.open(tmp_path, SMALL)


def test_segment_renamed_to_a_wrong_offset_is_rejected(tmp_path):
    write_log(tmp_path, 10)
    (segment,) = segment_files(tmp_path)
    segment.rename(segment.with_name("00000000000000000003.stdb.log"))
    with pytest.raises(CommitlogCorruptError, match="file name says 3"):
        Commitlog.open(tmp_path, SMALL)


def test_truncated_segment_header_is_corruption(tmp_path):
    write_log(tmp_path, 10)
    (segment,) = segment_files(tmp_path)
    segment.write_bytes(segment.read_bytes()[:10])
    with pytest.raises(CommitlogCorruptError, match="too short"):
        Commitlog.open(tmp_path, SMALL)


def test_stale_temp_files_are_removed_on_open(tmp_path):
    write_log(tmp_path, 5)
    stale = tmp_path / "00000000000000000005.stdb.log.tmp-999"
    stale.write_bytes(b"half a header")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("kept")
    with Commitlog.open(tmp_path, SMALL) as log:
        assert log.open_report.stale_files_removed == (stale,)
    assert not stale.exists() and unrelated.exists()


def test_second_writer_is_refused_with_the_holders_pid(tmp_path):
    with Commitlog.open(tmp_path, SMALL):
        with pytest.raises(CommitlogLockedError) as info:
            Commitlog.open(tmp_path, SMALL)
        assert info.value.holder_pid == os.getpid()
        assert str(os.getpid()) in str(info.value)
    Commitlog.open(tmp_path, SMALL).close()


def test_closed_log_refuses_writes_and_reads(tmp_path):
    log = Commitlog.open(tmp_path, SMALL)
    log.close()
    log.close()
    with pytest.raises(CommitlogClosedError):
        log.append_commits([b"x"])
    with pytest.raises(CommitlogClosedError):
        log.transactions_from(0)


def test_bad_arguments_are_rejected_before_anything_is_written(tmp_path):
    with Commitlog.open(tmp_path, SMALL) as log:
        with pytest.raises(ValueError):
            log.append_commits([])
        with pytest.raises(TypeError):
            log.append_commits([b"ok", "not bytes"])  # type: ignore[list-item]
        with pytest.raises(ValueError):
            list(log.transactions_from(-1))
        assert log.next_offset == 0
    with pytest.raises(ValueError):
        CommitlogOptions(max_segment_size=10)


def test_write_failure_poisons_the_log_and_reopen_recovers(tmp_path):
    calls = {"n": 0}

    def failing_write(fd, data):
        calls["n"] += 1
        if calls["n"] == 3:
            written = os.write(fd, bytes(data[: len(data) // 2]))  # half lands, then the disk is full
            assert written
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    log = Commitlog.open(tmp_path, SMALL, write=failing_write)  # 1st write: the segment header
    log.append_commits([b"first"])
    with pytest.raises(CommitlogFailedError):
        log.append_commits([b"second", b"third"])
    assert isinstance(log.failed, OSError)
    with pytest.raises(CommitlogFailedError, match="reopen"):
        log.append_commits([b"fourth"])
    with pytest.raises(CommitlogFailedError):
        log.sync()
    log.close()
    with Commitlog.open(tmp_path, SMALL) as log:
        # the failed write was cut back to the last fsync, which "first" never had: nothing torn, nothing back
        assert log.open_report.torn_tail is None
        assert [p for _, p in log.transactions_from(0)] == []
        assert log.append_commits([b"again"]) == 0


def test_short_writes_are_completed(tmp_path):
    def one_byte_at_a_time(fd, data):
        return os.write(fd, bytes(data[:1]))

    with Commitlog.open(tmp_path, SMALL, write=one_byte_at_a_time) as log:
        log.append_commits([b"abc", b"defgh"])
    assert [p for _, p in transactions_from(tmp_path)] == [b"abc", b"defgh"]


def test_fsync_failure_poisons_the_log(tmp_path):
    def failing_fsync(fd):
        raise OSError(errno.EIO, "I/O error")

    log = Commitlog.open(tmp_path / "fresh", SMALL)
    log.close()
    log = Commitlog.open(tmp_path / "fresh", SMALL, fsync=failing_fsync)
    log.append_commits([b"a"])
    with pytest.raises(CommitlogFailedError):
        log.sync()
    with pytest.raises(CommitlogFailedError):
        log.append_commits([b"b"])
    log.close()


def test_epoch_is_carried_and_never_goes_down(tmp_path):
    with Commitlog.open(tmp_path, SMALL) as log:
        log.append_commits([b"a"])
        log.set_epoch(5)
        log.append_commits([b"b"])
        with pytest.raises(ValueError):
            log.set_epoch(4)
    assert [c.epoch for c in commits_from(tmp_path)] == [0, 5]
    with Commitlog.open(tmp_path, SMALL) as log:
        assert log.epoch == 5


def test_fold_hands_decoded_records_to_the_visitor(tmp_path):
    inputs = TxInputs("add", b"\x01" * 32, b"\x02" * 16, 1_700_000_000_000_000, b"\x05\x00")
    records = [
        TxRecord(inputs, None, [(4096, [b"row-1", b"row-2"])], [], []),
        TxRecord(None, "error text", [], [(4096, [b"row-1"])], [7]),
    ]
    with Commitlog.open(tmp_path, SMALL) as log:
        log.append_commits([r.encode() for r in records])
        seen: list[tuple[int, TxRecord]] = []
        assert log.fold_transactions(0, lambda offset, record: seen.append((offset, record))) == 2
        assert seen == list(enumerate(records))
        assert log.fold_transactions(1, lambda *_: None) == 2
        assert log.fold_transactions(2, lambda *_: None) == 2
    seen.clear()
    assert fold_transactions(tmp_path, 1, lambda offset, record: seen.append((offset, record))) == 2
    assert seen == [(1, records[1])]


def test_fold_reports_undecodable_records_with_their_offset(tmp_path):
    with Commitlog.open(tmp_path, SMALL) as log:
        log.append_commits([encode_tx_record(None, None, [(1, [b"r"])], []), b"\xff not a record"])
        with pytest.raises(CommitlogDecodeError, match="transaction 1"):
            log.fold_transactions(0, lambda *_: None)


def test_reading_before_the_first_segment_is_an_error(tmp_path):
    write_log(tmp_path, 200)
    first = segment_files(tmp_path)[0]
    first.unlink()
    index_files(tmp_path)[0].unlink()
    with pytest.raises(CommitlogError, match="precedes the oldest segment"):
        list(transactions_from(tmp_path, 0))


def test_verify_all_on_open_checks_every_commit(tmp_path):
    payloads = write_log(tmp_path, 200)
    options = CommitlogOptions(
        max_segment_size=1024, offset_index_interval_bytes=128, verify_all_on_open=True
    )
    with Commitlog.open(tmp_path, options) as log:
        assert [p for _, p in log.transactions_from(0)] == payloads
        assert log.open_report.indexes_rebuilt == ()


def test_payload_helper_is_deterministic_and_varied():
    assert payload_for(3) == payload_for(3)
    assert len({len(payload_for(i)) for i in range(100)}) > 30


def test_readers_in_other_threads_see_consistent_prefixes_while_appending(tmp_path):
    options = CommitlogOptions(max_segment_size=2048, offset_index_interval_bytes=128)
    payloads = [payload_for(i) for i in range(3000)]
    problems: list[str] = []
    with Commitlog.open(tmp_path, options) as log:
        done = threading.Event()

        def reader() -> None:
            while not done.is_set():
                start = len(problems)  # any offset works; vary it with the loop
                seen = [p for _, p in log.transactions_from(start)]
                if seen != payloads[start : start + len(seen)]:
                    problems.append(f"mismatch reading from {start}")

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for begin in range(0, len(payloads), 25):
                log.append_commits(payloads[begin : begin + 25])
        finally:
            done.set()
            thread.join()
        assert problems == []
        assert len(log.segments()) > 10


def test_offset_index_lookup():
    index = OffsetIndex([(10, 100), (20, 200), (30, 300)])
    assert index.lookup(9) is None
    assert index.lookup(10) == (10, 100)
    assert index.lookup(29) == (20, 200)
    assert index.lookup(1000) == (30, 300)
    assert index.lookup(1000, end_position=300) == (20, 200)
    assert index.lookup(1000, end_position=101) == (10, 100)
    with pytest.raises(ValueError):
        index.append(30, 400)
    with pytest.raises(ValueError):
        index.append(40, 300)


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_commits_whose_durability_failed_do_not_come_back(tmp_path, failing):
    """A full disk: what was appended but never made durable (a partial write, or a write whose fsync failed)
    is cut off at once, so that reopening the log cannot bring back commits nobody was told about."""
    state = {"full": False, "writes": 0}

    def write(fd: int, data: bytes | memoryview) -> int:
        if state["full"] and failing == "write":
            state["writes"] += 1
            if state["writes"] > 1:  # the first append fits; the second gets a few bytes in, then refused
                os.write(fd, bytes(data[:7]))
                raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def fsync(fd: int) -> None:
        if state["full"] and failing == "fsync":
            raise OSError(errno.ENOSPC, "No space left on device")
        os.fdatasync(fd)

    log = Commitlog.open(tmp_path, SMALL, write=write, fsync=fsync)
    log.append_commits([b"durable 0", b"durable 1"])
    log.sync()
    state["full"] = True
    with pytest.raises(CommitlogFailedError):
        log.append_commits([b"lost 2"])  # written, never synced
        log.append_commits([b"lost 3"])
        log.sync()
    log.close()
    state["full"] = False
    again = Commitlog.open(tmp_path, SMALL)
    try:
        assert [payload for _, payload in again.transactions_from(0)] == [b"durable 0", b"durable 1"]
        assert again.append_commits([b"after"]) == 2
    finally:
        again.close()
