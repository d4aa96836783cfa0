"""Bit flips anywhere in a small log: the log either refuses (a documented corruption error, from open or
from reading) or yields an exact prefix of what was written, with the loss reported as a torn tail.
It never yields a wrong transaction and never raises anything else.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from spacetimedb.commitlog import (
    Commitlog,
    CommitlogCorruptError,
    CommitlogFormatError,
    CommitlogOptions,
    transactions_from,
)

from .helpers import payload_for

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


DOCUMENTED = (CommitlogCorruptError, CommitlogFormatError)
OPTIONS = CommitlogOptions(max_segment_size=200, offset_index_interval_bytes=60)
VERIFY_ALL = CommitlogOptions(max_segment_size=200, offset_index_interval_bytes=60, verify_all_on_open=True)


def _build_log(directory: Path, count: int, options: CommitlogOptions) -> list[bytes]:
    payloads = [payload_for(i, size=i % 17) for i in range(count)]
    with Commitlog.open(directory, options) as log:
        for start in range(0, count, 3):
            log.append_commits(payloads[start : start + 3])
    return payloads


class LogFiles:
    """Snapshot of every file of a log directory, to damage one and put everything back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.originals = {p: p.read_bytes() for p in directory.iterdir() if p.suffix in (".log", ".ofs")}

    def restore(self) -> None:
        for path in list(self.directory.iterdir()):
            if path not in self.originals and path.name != "writer.lock":
                path.unlink()
        for path, data in self.originals.items():
            # Rewriting only what changed keeps the sweep fast (truncating files is the slow part).
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)

    def flip(self, path: Path, bit: int) -> None:
        data = bytearray(self.originals[path])
        data[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))


def _check_read_only(directory: Path, payloads: list[bytes]) -> str:
    try:
        read = [(offset, payload) for offset, payload in transactions_from(directory)]
    except DOCUMENTED:
        return "error"
    assert [offset for offset, _ in read] == list(range(len(read)))
    assert [payload for _, payload in read] == payloads[: len(read)]
    return "prefix" if len(read) < len(payloads) else "complete"


def _check_open_and_replay(directory: Path, payloads: list[bytes], options: CommitlogOptions) -> str:
    try:
        log = Commitlog.open(directory, options)
    except DOCUMENTED:
        return "open-error"
    try:
        try:
            read = list(log.transactions_from(0))
        except DOCUMENTED:
            return "replay-error"
        assert [offset for offset, _ in read] == list(range(len(read)))
        assert [payload for _, payload in read] == payloads[: len(read)], "a wrong transaction was replayed"
        assert log.next_offset == len(read)
        if len(read) < len(payloads):
            torn = log.open_report.torn_tail
            assert torn is not None, "transactions were lost without a torn-tail report"
            assert torn.offset == len(read)
            return "prefix"
        return "complete"
    finally:
        log.close()


def _sweep(
    directory: Path, payloads: list[bytes], bits: list[tuple[Path, int]], options: CommitlogOptions
) -> dict:
    files = LogFiles(directory)
    outcomes: dict[str, int] = {}
    for path, bit in bits:
        files.flip(path, bit)
        read_only = _check_read_only(directory, payloads)
        outcome = _check_open_and_replay(directory, payloads, options)
        if options.verify_all_on_open:
            assert outcome != "replay-error", f"verify_all_on_open missed a flip of bit {bit} in {path.name}"
        if path.suffix == ".log" and read_only != "error":
            # A damaged commit is either reported by open or is the torn tail both readers stop at.
            assert outcome in ("prefix", "open-error", "replay-error")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        files.restore()
    return outcomes


def _all_bits(paths: list[Path]) -> list[tuple[Path, int]]:
    return [(path, bit) for path in paths for bit in range(path.stat().st_size * 8)]


SEGMENT_COUNT = 5  # 24 transactions in 200-byte segments


def _small_log(directory: Path, options: CommitlogOptions) -> tuple[list[bytes], list[Path]]:
    payloads = _build_log(directory, 24, options)
    segments = sorted(directory.glob("*.stdb.log"))
    assert len(segments) == SEGMENT_COUNT
    return payloads, segments


# One test per segment so that the ~8,000 flips spread over parallel workers.
@pytest.mark.parametrize("segment_number", range(SEGMENT_COUNT))
def test_every_bit_flip_in_each_segment(tmp_path, segment_number):
    payloads, segments = _small_log(tmp_path, OPTIONS)
    bits = _all_bits([segments[segment_number]])
    outcomes = _sweep(tmp_path, payloads, bits, OPTIONS)
    # Every flip was caught somewhere: no flip in segment data leaves the log "complete".
    assert "complete" not in outcomes
    assert sum(outcomes.values()) == len(bits) > 1000
    if segment_number == SEGMENT_COUNT - 1:
        assert outcomes.get("prefix", 0) > 0, "flips in the last commit of the log are torn tails"


@pytest.mark.parametrize("segment_number", [0, SEGMENT_COUNT - 1])
def test_verify_all_on_open_catches_every_flip_at_open(tmp_path, segment_number):
    payloads, segments = _small_log(tmp_path, VERIFY_ALL)
    outcomes = _sweep(tmp_path, payloads, _all_bits([segments[segment_number]]), VERIFY_ALL)
    assert set(outcomes) <= {"open-error", "prefix"}


def test_every_bit_flip_in_the_indexes(tmp_path):
    payloads, _ = _small_log(tmp_path, OPTIONS)
    bits = _all_bits(sorted(tmp_path.glob("*.stdb.ofs")))
    assert len(bits) > 5 * 24 * 8
    outcomes = _sweep(tmp_path, payloads, bits, OPTIONS)
    # The index is only an accelerator: damaging it never costs a transaction.
    assert outcomes == {"complete": len(bits)}


@pytest.mark.slow
def test_random_bit_flips_in_a_larger_log(tmp_path):
    options = CommitlogOptions(max_segment_size=16 * 1024, offset_index_interval_bytes=512)
    payloads = _build_log(tmp_path, 3000, options)
    rng = random.Random(20240611)
    segments = sorted(tmp_path.glob("*.log"))
    bits = [(path, rng.randrange(path.stat().st_size * 8)) for path in rng.choices(segments, k=400)]
    outcomes = _sweep(tmp_path, payloads, bits, options)
    assert "complete" not in outcomes
