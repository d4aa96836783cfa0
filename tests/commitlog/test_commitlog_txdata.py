"""The transaction record format: round trips, canonical encoding, and a decoder that only ever raises
CommitlogDecodeError on bad input."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetimedb.commitlog import (
    CommitlogDecodeError,
    TxInputs,
    TxRecord,
    decode_tx_record,
    encode_commit_record,
    encode_tx_record,
)
from spacetimedb.commitlog.txdata import decode_uvarint, encode_uvarint

u32 = st.integers(min_value=0, max_value=2**32 - 1)
rows = st.lists(st.binary(max_size=300), max_size=6)
groups = st.lists(st.tuples(u32, rows), max_size=4)
inputs = st.builds(
    TxInputs,
    st.text(max_size=40),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=16, max_size=16),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=200),
)
records = st.builds(
    TxRecord,
    st.none() | inputs,
    st.none() | st.text(max_size=60),
    groups,
    groups,
    st.lists(u32, max_size=5),
)


@given(records)
@settings(max_examples=300, deadline=None)
def test_round_trip(record):
    encoded = record.encode()
    assert decode_tx_record(encoded) == record
    assert decode_tx_record(memoryview(encoded)) == record
    assert decode_tx_record(bytearray(encoded)) == record


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_uvarint_round_trip(value):
    encoded = encode_uvarint(value)
    assert decode_uvarint(encoded, 0) == (value, len(encoded))
    assert len(encoded) == max(1, (value.bit_length() + 6) // 7)


def test_layout_of_a_small_record():
    record = encode_tx_record(
        TxInputs("hi", b"\xaa" * 32, b"\xbb" * 16, 1, b"\x07"),
        None,
        [(4096, [b"ab", b"c" * 200])],
        [],
        [9],
    )
    expected = (
        b"\xa0"  # flags: inputs | mutations
        + b"\x02hi" + b"\xaa" * 32 + b"\xbb" * 16 + (1).to_bytes(8, "little") + b"\x01\x07"
        + b"\x01" + (4096).to_bytes(4, "little") + b"\x02" + b"\x02ab" + b"\xc8\x01" + b"c" * 200
        + b"\x00"  # no delete groups
        + b"\x01" + (9).to_bytes(4, "little")
    )  # fmt: skip
    assert record == expected


def test_empty_record_is_a_single_flags_byte():
    assert encode_tx_record(None, None, [], [], []) == b"\x00"
    assert decode_tx_record(b"\x00") == TxRecord()


@pytest.mark.parametrize(
    ("inputs", "groups", "message"),
    [
        (TxInputs("r", b"short", b"\x00" * 16, 0, b""), [], "32 bytes"),
        (TxInputs("r", b"\x00" * 32, b"\x00" * 15, 0, b""), [], "16 bytes"),
        (TxInputs("r", b"\x00" * 32, b"\x00" * 16, 2**63, b""), [], "cannot encode"),
        (None, [(2**32, [b"x"])], "cannot encode"),
        (None, [(-1, [b"x"])], "cannot encode"),
    ],
)
def test_encode_rejects_bad_input(inputs, groups, message):
    with pytest.raises(ValueError, match=message):
        encode_tx_record(inputs, None, groups, [], [])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x01", "unknown flag"),
        (b"\x20\x00\x00\x00", "no mutations"),
        (b"\x20\x01\x00\x00", "cannot fit"),
        (b"\x00\x00", "trailing"),
        (b"\x40\x80\x00", "shortest form"),
        (b"\x40" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x40\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "exceeds 64 bits"),
        (b"\x40\x02\xff\xfe", "UTF-8"),
        (b"\x40\x05ab", "runs past"),
        (b"\x20\xff\xff\xff\xff\x0f", "cannot fit"),
        (b"\x20\x01\x01\x00\x00\x00\xff\xff\xff\x7f", "rows cannot fit"),
        (b"\x20\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "truncated tables cannot fit"),
        (b"\x80\x00" + b"\x00" * 20, "inputs truncated"),
    ],
)
def test_decode_rejects_malformed_records(data, message):
    with pytest.raises(CommitlogDecodeError, match=message):
        decode_tx_record(data)


def test_decode_rejects_non_bytes():
    with pytest.raises(TypeError):
        decode_tx_record(5)  # type: ignore[arg-type]


@given(st.binary(max_size=200))
@settings(max_examples=2000, deadline=None)
def test_random_bytes_decode_or_raise_decode_error(data):
    try:
        record = decode_tx_record(data)
    except CommitlogDecodeError:
        return
    # Whatever decodes is canonical: encoding it again gives back exactly the input.
    assert record.encode() == data


@given(records, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_mutated_records_decode_or_raise_decode_error(record, rng):
    encoded = record.encode()
    for mutated in _mutations(encoded, rng):
        try:
            decoded = decode_tx_record(mutated)
        except CommitlogDecodeError:
            continue
        assert decoded.encode() == mutated


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    out = [data[:cut] for cut in range(len(data))]
    for _ in range(30):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        out.append(bytes(buf))
    out.append(data + bytes([rng.randrange(256)]))
    return out


def test_huge_counts_fail_fast_without_allocating():
    # A claimed 2**63 groups / rows / tables: rejected from the byte count alone, long before any loop.
    big = encode_uvarint(2**63)
    for data in (b"\x20" + big, b"\x20\x01" + (1).to_bytes(4, "little") + big, b"\x20\x00\x00" + big):
        with pytest.raises(CommitlogDecodeError, match="cannot fit"):
            decode_tx_record(data)


@given(
    st.none() | st.builds(TxInputs, st.text(max_size=20), st.binary(min_size=32, max_size=32),
                          st.binary(min_size=16, max_size=16), st.integers(-(1 << 63), (1 << 63) - 1),
                          st.binary(max_size=300)),
    st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.lists(st.binary(max_size=200), max_size=4),
                       st.lists(st.binary(max_size=200), max_size=4)), max_size=4),
)  # fmt: skip
def test_a_commit_record_is_the_record_of_its_groups(inputs, tables):
    class Changed:
        def __init__(self, table_id, inserts, deletes):
            self.table_id, self.insert_bytes, self.delete_bytes = table_id, inserts, deletes

    changed = [Changed(*table) for table in tables]
    inserts = [(t, rows) for t, rows, _ in tables if rows]
    deletes = [(t, rows) for t, _, rows in tables if rows]
    assert encode_commit_record(inputs, changed) == encode_tx_record(inputs, None, inserts, deletes)


def test_out_of_range_ids_and_timestamps_are_refused_by_both_encoders():
    class Changed:
        table_id, insert_bytes, delete_bytes = 1 << 32, [b"row"], []

    inputs = TxInputs("r", bytes(32), bytes(16), 0, b"")
    with pytest.raises(ValueError, match="cannot encode transaction record"):
        encode_commit_record(inputs, [Changed()])
    with pytest.raises(ValueError, match="cannot encode transaction record"):
        encode_tx_record(inputs, None, [(1 << 32, [b"row"])], [])
    late = TxInputs("r", bytes(32), bytes(16), 1 << 63, b"")
    for encode in (lambda: encode_commit_record(late, []), lambda: encode_tx_record(late, None, [], [])):
        with pytest.raises(ValueError, match="cannot encode transaction record"):
            encode()
