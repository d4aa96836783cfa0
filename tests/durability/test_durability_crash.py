"""Crash test with a real process: SIGKILL at a random moment loses nothing that was reported durable,
and never produces a transaction that was not appended."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from spacetimedb.commitlog import Commitlog, CommitlogOptions

from .crash_child import payload_for

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


CHILD = Path(__file__).with_name("crash_child.py")


def _run_and_kill(directory: Path, segment_size: int, reports_before_kill: int) -> tuple[int, int | None]:
    """Start the child, read `reports_before_kill` durable offsets, SIGKILL it.

    Returns (offset the child started at, highest offset it reported durable).
    """
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory), str(segment_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith(b"start "), (first, child.stderr.read() if child.stderr else b"")
        start = int(first.split()[1])
        durable = None
        for _ in range(reports_before_kill):
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else b""
            durable = int(line)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    return start, durable


@pytest.mark.timeout(120)
@pytest.mark.parametrize("segment_size", [1 << 20, 16 * 1024], ids=["one_segment", "rotating"])
def test_sigkill_loses_nothing_reported_durable(tmp_path, segment_size):
    rng = random.Random(segment_size)
    options = CommitlogOptions(max_segment_size=segment_size, offset_index_interval_bytes=512)
    expected_next = 0
    for _ in range(6):
        start, durable = _run_and_kill(tmp_path, segment_size, rng.randint(1, 60))
        assert start == expected_next  # the child resumed exactly where the last survivor ended
        with Commitlog.open(tmp_path, options) as log:
            count = 0
            for offset, payload in log.transactions_from(0):
                assert payload == payload_for(offset), f"transaction {offset} is not what was appended"
                count += 1
            assert durable is not None and count > durable, f"durable offset {durable} lost ({count} on disk)"
            assert log.next_offset == count
            expected_next = count
    if segment_size < 1 << 20:
        assert len(list(tmp_path.glob("*.stdb.log"))) > 1
