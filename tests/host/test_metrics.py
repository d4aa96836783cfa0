"""The reducer metrics a worker counts for ``/v1/metrics``: calls, failures, the sum of durations and the
duration histogram, whose buckets follow ``bisect_left`` over ``DURATION_BUCKETS_SECONDS`` (a call of exactly a
bound's duration counts in that bound's bucket)."""

import bisect

from hypothesis import given
from hypothesis import strategies as st

from spacetimedb.host.metrics import ReducerMetrics
from spacetimedb.protocol.seam import DURATION_BUCKETS_SECONDS

BOUNDS = DURATION_BUCKETS_SECONDS


def buckets_of(*seconds: float) -> tuple[int, ...]:
    metrics = ReducerMetrics()
    for duration in seconds:
        metrics.record("transfer", True, duration)
    (report,) = metrics.report()
    return report.duration_buckets


def test_calls_failures_and_durations_are_counted_per_reducer():
    metrics = ReducerMetrics()
    metrics.record("transfer", True, 0.000_010)
    metrics.record("transfer", False, 0.002)
    metrics.record("noop", True, 0.000_001)
    noop, transfer = metrics.report()  # sorted by name
    assert (noop.reducer, noop.calls, noop.failures, noop.duration_sum_micros) == ("noop", 1, 0, 1)
    assert (transfer.calls, transfer.failures, transfer.duration_sum_micros) == (2, 1, 2010)
    assert len(transfer.duration_buckets) == len(BOUNDS) + 1


def test_a_call_within_the_first_bound_counts_in_the_first_bucket():
    assert buckets_of(0.0, 0.000_001, BOUNDS[0])[0] == 3


def test_a_call_just_past_a_bound_counts_in_the_next_bucket():
    counts = buckets_of(BOUNDS[0] * 1.000_001, BOUNDS[1], BOUNDS[-1] * 2)
    assert counts[1] == 2  # past the first bound, within the second
    assert counts[-1] == 1  # longer than every bound
    assert sum(counts) == 3


@given(st.lists(st.floats(min_value=0.0, max_value=100.0), max_size=20))
def test_the_histogram_is_bisect_left_of_the_bounds(durations):
    expected = [0] * (len(BOUNDS) + 1)
    for duration in durations:
        expected[bisect.bisect_left(BOUNDS, duration)] += 1
    if durations:
        assert buckets_of(*durations) == tuple(expected)
