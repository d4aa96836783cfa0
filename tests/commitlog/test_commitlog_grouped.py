"""``append_transactions``: consecutive transactions written as commits of up to ``GROUP_RECORDS`` records and
``GROUP_BYTES`` of payload, read back one transaction at a time, and cut whole when a crash tears one."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetimedb.commitlog import Commitlog, CommitlogOptions, commits_from, transactions_from
from spacetimedb.commitlog.log import GROUP_BYTES, GROUP_RECORDS

from .helpers import payload_for

OPTIONS = CommitlogOptions(max_segment_size=1 << 22, offset_index_interval_bytes=256)


def commit_shapes(directory) -> list[tuple[int, int]]:
    """(first offset, transactions) of every commit in the log."""
    return [(commit.min_tx_offset, len(commit.records)) for commit in commits_from(directory)]


def test_transactions_are_grouped_up_to_group_records_per_commit(tmp_path):
    payloads = [payload_for(i) for i in range(2 * GROUP_RECORDS + 88)]
    with Commitlog.open(tmp_path, OPTIONS) as log:
        assert log.append_transactions(payloads) == 0
        assert log.append_transactions([b"next"]) == len(payloads)
        assert log.next_offset == len(payloads) + 1
    assert commit_shapes(tmp_path) == [
        (0, GROUP_RECORDS),
        (GROUP_RECORDS, GROUP_RECORDS),
        (2 * GROUP_RECORDS, 88),
        (len(payloads), 1),
    ]
    assert list(transactions_from(tmp_path)) == list(enumerate([*payloads, b"next"]))


def test_a_group_closes_before_it_outgrows_group_bytes(tmp_path):
    big = GROUP_BYTES // 3
    payloads = [bytes([i]) * big for i in range(5)] + [b"x" * (GROUP_BYTES + 1), b"tail"]
    with Commitlog.open(tmp_path, OPTIONS) as log:
        log.append_transactions(payloads)
    # two of a third fit with their length prefixes, a third one does not; a payload above the limit goes alone
    assert commit_shapes(tmp_path) == [(0, 2), (2, 2), (4, 1), (5, 1), (6, 1)]
    assert [payload for _, payload in transactions_from(tmp_path)] == payloads


def test_a_torn_group_is_cut_whole_and_writing_resumes_at_its_first_offset(tmp_path):
    first, second = [payload_for(i, 30) for i in range(10)], [payload_for(i, 30) for i in range(10, 20)]
    with Commitlog.open(tmp_path, OPTIONS) as log:
        log.append_transactions(first)
        kept = log.segments()[-1].size
        log.append_transactions(second)
        full = log.segments()[-1].size
    (segment,) = tmp_path.glob("*.stdb.log")
    data = segment.read_bytes()
    for cut in (kept + 1, (kept + full) // 2, full - 1):
        segment.write_bytes(data[:cut])
        with Commitlog.open(tmp_path, OPTIONS) as log:
            assert [payload for _, payload in log.transactions_from(0)] == first
            assert log.open_report.torn_tail.offset == len(first)
            assert log.next_offset == len(first)
        assert segment.stat().st_size == kept
    with Commitlog.open(tmp_path, OPTIONS) as log:
        assert log.append_transactions(second) == len(first)
    assert [payload for _, payload in transactions_from(tmp_path)] == first + second


def test_reading_from_an_offset_inside_a_group(tmp_path):
    payloads = [payload_for(i) for i in range(40)]
    with Commitlog.open(tmp_path, OPTIONS) as log:
        log.append_transactions(payloads)
        for start in (0, 1, 17, 39, 40):
            assert list(log.transactions_from(start)) == list(enumerate(payloads))[start:]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    calls=st.lists(
        st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=300), min_size=1, max_size=4
    )
)
def test_any_sequence_of_calls_reads_back_as_written(tmp_path_factory, calls):
    directory = tmp_path_factory.mktemp("grouped")
    written: list[bytes] = []
    with Commitlog.open(directory, OPTIONS) as log:
        for sizes in calls:
            payloads = [payload_for(len(written) + i, size) for i, size in enumerate(sizes)]
            assert log.append_transactions(payloads) == len(written)
            written += payloads
        log.sync()
    assert [payload for _, payload in transactions_from(directory)] == written
    for commit in commits_from(directory):
        assert 1 <= len(commit.records) <= GROUP_RECORDS
        if len(commit.records) > 1:
            assert sum(len(r) + 4 for r in commit.records) - 4 <= GROUP_BYTES
