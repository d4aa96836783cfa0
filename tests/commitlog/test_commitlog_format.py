"""The pure byte layer: segment headers, commit framing, checksums."""

from __future__ import annotations

import pytest
from crc32c import crc32c

from spacetimedb.commitlog.format import (
    COMMIT_FRAMING_LEN,
    COMMIT_HEADER_LEN,
    COMMIT_MAGIC,
    SEGMENT_HEADER_LEN,
    BadCommit,
    CommitView,
    FormatProblem,
    check_commit,
    decode_index_header,
    decode_segment_header,
    encode_commit,
    encode_index_header,
    encode_segment_header,
    find_valid_commit,
    iter_commits,
    join_records,
    parse_segment_file_name,
    segment_file_name,
    split_records,
)


def test_segment_header_round_trip():
    raw = encode_segment_header(12345, 7)
    assert len(raw) == SEGMENT_HEADER_LEN == 32
    header = decode_segment_header(raw)
    assert (header.base_offset, header.epoch, header.version, header.checksum_algorithm) == (12345, 7, 1, 0)


def test_segment_header_layout_is_little_endian():
    raw = encode_segment_header(0x0102030405060708, 9)
    assert raw[:8] == b"STDBCLOG"
    assert raw[8:12] == bytes([1, 0, 0, 0])
    assert raw[12:20] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert raw[20:28] == (9).to_bytes(8, "little")
    assert raw[28:32] == crc32c(raw[:28]).to_bytes(4, "little")


def test_every_segment_header_bit_flip_is_detected():
    original = encode_segment_header(42, 3)
    for bit in range(SEGMENT_HEADER_LEN * 8):
        raw = bytearray(original)
        raw[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FormatProblem):
            decode_segment_header(bytes(raw))


def test_unsupported_version_is_flagged_as_unsupported():
    from spacetimedb.commitlog import format as fmt

    body = fmt._SEGMENT_HEADER_BODY.pack(fmt.SEGMENT_MAGIC, 2, 0, 0, 0, 0)
    with pytest.raises(FormatProblem, match="version 2") as info:
        decode_segment_header(body + crc32c(body).to_bytes(4, "little"))
    assert info.value.unsupported


def test_index_header_round_trip_and_corruption():
    raw = encode_index_header(99)
    assert decode_index_header(raw) == 99
    with pytest.raises(FormatProblem):
        decode_index_header(raw[:-1] + bytes([raw[-1] ^ 1]))


def test_segment_file_names_sort_and_parse():
    assert segment_file_name(5) == "00000000000000000005.stdb.log"
    assert parse_segment_file_name(segment_file_name(2**64 - 1)) == 2**64 - 1
    assert parse_segment_file_name("5.stdb.log") is None
    assert parse_segment_file_name("00000000000000000005.stdb.log.tmp-1") is None


def test_commit_layout():
    raw = encode_commit(0x10, 2, [b"abc"])
    assert len(raw) == COMMIT_FRAMING_LEN + 3
    assert raw[:4] == COMMIT_MAGIC
    assert raw[4:12] == (0x10).to_bytes(8, "little")
    assert raw[12:20] == (2).to_bytes(8, "little")
    assert raw[20:22] == (1).to_bytes(2, "little")
    assert raw[22:26] == (3).to_bytes(4, "little")
    assert raw[26:29] == b"abc"
    assert raw[29:] == crc32c(raw[:29]).to_bytes(4, "little")


def test_commit_round_trip_single_and_multi_record():
    for records in ([b"x"], [b""], [b"a", b"", b"ccc"], [bytes(range(256)) * 3, b"tail"]):
        raw = encode_commit(7, 0, records)
        view = check_commit(raw, memoryview(raw), 0, len(raw), 7, 0)
        assert isinstance(view, CommitView)
        assert (view.min_tx_offset, view.n, view.end) == (7, len(records), len(raw))
        assert split_records(raw, view.payload_start, view.payload_end, view.n) == records


def test_single_record_payload_has_no_length_prefix():
    assert join_records([b"hello"]) == b"hello"
    assert join_records([b"ab", b"c"]) == b"\x02\x00\x00\x00abc"


def test_split_records_rejects_inconsistent_lengths():
    payload = b"\xff\x00\x00\x00ab"
    with pytest.raises(FormatProblem):
        split_records(payload, 0, len(payload), 2)


def test_every_bit_flip_in_a_commit_is_detected():
    raw = encode_commit(3, 1, [b"some payload bytes", b"and more"])
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        result = check_commit(bytes(flipped), memoryview(bytes(flipped)), 0, len(raw), 3, 0)
        assert isinstance(result, str), f"flip of bit {bit} went unnoticed"


def test_check_commit_reasons():
    raw = encode_commit(5, 3, [b"payload"])
    view = memoryview(raw)
    assert "offset 5, expected 6" in check_commit(raw, view, 0, len(raw), 6, 0)
    assert "epoch went backwards" in check_commit(raw, view, 0, len(raw), 5, 4)
    assert "runs past the end" in check_commit(raw, view, 0, len(raw) - 1, 5, 0)
    assert "at least" in check_commit(raw, view, 0, COMMIT_HEADER_LEN, 5, 0)
    zeros = bytes(64)
    assert check_commit(zeros, memoryview(zeros), 0, 64, 0, 0) == "no commit magic"


def test_iter_commits_stops_at_first_bad_commit():
    good = encode_commit(0, 0, [b"a"]) + encode_commit(1, 0, [b"b", b"c"])
    data = good + b"garbage that is long enough to look like a header....."
    commits = []
    with pytest.raises(BadCommit) as info:
        commits.extend(iter_commits(data, memoryview(data), 0, len(data), 0, 0))
    assert [c.min_tx_offset for c in commits] == [0, 1]
    assert (info.value.position, info.value.expected_offset) == (len(good), 3)


def test_find_valid_commit_requires_a_plausible_offset():
    first, second = encode_commit(10, 0, [b"a" * 20]), encode_commit(11, 0, [b"b"])
    torn = first[:-3] + b"xyz"
    data = torn + second
    assert find_valid_commit(data, memoryview(data), 0, len(data), 10) == len(torn)
    # The same frame with an offset that cannot follow the bad commit does not count.
    stray = encode_commit(500, 0, [b"b"])
    data = torn + stray
    assert find_valid_commit(data, memoryview(data), 0, len(data), 10) is None
