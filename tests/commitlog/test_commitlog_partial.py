"""Partial writes: a crash can leave any prefix of the last write on disk. Opening must keep every complete
commit, cut the rest off, say so, and carry on writing at the right offset.
"""

from __future__ import annotations

from pathlib import Path

from spacetimedb.commitlog import Commitlog, CommitlogOptions, transactions_from

from .helpers import payload_for

OPTIONS = CommitlogOptions(max_segment_size=1 << 20, offset_index_interval_bytes=100)


def _write(directory: Path, batches: list[list[bytes]]) -> list[int]:
    """Write the batches; return the file size after each one."""
    sizes = []
    with Commitlog.open(directory, OPTIONS) as log:
        for batch in batches:
            log.append_commits(batch)
            sizes.append(log.segments()[-1].size)
    return sizes


def test_truncating_at_every_byte_of_the_last_commit(tmp_path):
    payloads = [payload_for(i, size=40 + i) for i in range(30)]
    _write(tmp_path, [payloads[:29], payloads[29:]])
    (segment,) = tmp_path.glob("*.stdb.log")
    full = segment.read_bytes()
    last_commit_start = len(full) - (30 + len(payloads[29]))
    for cut in range(last_commit_start, len(full) + 1):
        segment.write_bytes(full[:cut])
        with Commitlog.open(tmp_path, OPTIONS) as log:
            read = [p for _, p in log.transactions_from(0)]
            torn = log.open_report.torn_tail
            if cut == len(full):
                assert read == payloads and torn is None
            else:
                assert read == payloads[:29]
                if cut == last_commit_start:
                    assert torn is None  # a clean commit boundary: nothing to cut
                else:
                    assert (torn.offset, torn.byte_position, torn.bytes_truncated) == (
                        29,
                        last_commit_start,
                        cut - last_commit_start,
                    )
            assert log.next_offset == len(read)
            assert segment.stat().st_size == (len(full) if cut == len(full) else last_commit_start)


def test_truncating_anywhere_in_a_multi_commit_batch_keeps_the_complete_commits(tmp_path):
    first = [payload_for(i, size=20) for i in range(10)]
    batch = [payload_for(i, size=20 + i) for i in range(10, 20)]
    sizes = _write(tmp_path, [first, batch])
    (segment,) = tmp_path.glob("*.stdb.log")
    full = segment.read_bytes()
    boundaries = [sizes[0]]
    for payload in batch:
        boundaries.append(boundaries[-1] + 30 + len(payload))
    assert boundaries[-1] == len(full)
    for cut in range(sizes[0], len(full) + 1):
        segment.write_bytes(full[:cut])
        complete = sum(1 for end in boundaries[1:] if end <= cut)
        with Commitlog.open(tmp_path, OPTIONS) as log:
            assert [p for _, p in log.transactions_from(0)] == first + batch[:complete]
            # Writing continues at the first lost offset and everything stays readable.
            log.append_commits([b"resumed"])
        expected = [*first, *batch[:complete], b"resumed"]
        assert [p for _, p in transactions_from(tmp_path)] == expected
        assert [o for o, _ in transactions_from(tmp_path)] == list(range(len(expected)))


def test_torn_first_commit_of_a_fresh_segment(tmp_path):
    options = CommitlogOptions(max_segment_size=200, offset_index_interval_bytes=100)
    payloads = [payload_for(i, size=50) for i in range(8)]
    with Commitlog.open(tmp_path, options) as log:
        log.append_commits(payloads)
    last = sorted(tmp_path.glob("*.stdb.log"))[-1]
    base = int(last.name[:20])
    data = last.read_bytes()
    assert base < 8 and len(data) > 32
    last.write_bytes(data[: 32 + 10])
    with Commitlog.open(tmp_path, options) as log:
        assert log.open_report.torn_tail.offset == base
        assert [p for _, p in log.transactions_from(0)] == payloads[:base]
        assert log.append_commits([b"x"]) == base


def test_small_trailing_garbage_is_cut(tmp_path):
    _write(tmp_path, [[b"a", b"b"]])
    (segment,) = tmp_path.glob("*.stdb.log")
    size = segment.stat().st_size
    with open(segment, "ab") as file:
        file.write(b"\x01\x02\x03")
    with Commitlog.open(tmp_path, OPTIONS) as log:
        assert log.open_report.torn_tail.bytes_truncated == 3
        assert log.next_offset == 2
    assert segment.stat().st_size == size
