import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetimedb.sats import (
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I128,
    I256,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIMESTAMP,
    U8,
    U64,
    U128,
    U256,
    ConnectionId,
    DecodeError,
    Identity,
    ProductType,
    ScheduleAt,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    option,
)
from spacetimedb.sats.json import from_json, to_json, to_json_untyped

ROW = ProductType.of(("id", U64), ("name", option(STRING)), ("who", IDENTITY), ("at", TIMESTAMP))
IDENT = Identity.from_hex("c200ef884364c1a99be0298dc68f2004e6b97c09d1b1658b7db22f51fb662059")


def test_typed_form():
    value = (7, None, IDENT, Timestamp(5))
    assert to_json(ROW, value) == {
        "id": 7,
        "name": {"none": []},
        "who": {"__identity__": "0xc200ef884364c1a99be0298dc68f2004e6b97c09d1b1658b7db22f51fb662059"},
        "at": {"__timestamp_micros_since_unix_epoch__": 5},
    }
    assert to_json_untyped(ROW, value) == [7, [1, []], ["0x" + IDENT.to_hex()], [5]]


@pytest.mark.parametrize("given", ["4", 4.0, "0x4", 4.5, True])
def test_integers_up_to_64_bits_are_json_numbers_only(given):
    """As upstream, where serde_json refuses ``"4"`` and ``4.0`` for a ``u8`` (issue: a CLI call passed ``'"4"'``
    for a u8 and it was silently accepted)."""
    for ty in (U8, U64):
        with pytest.raises(DecodeError):
            from_json(ty, given)


def test_wider_integers_also_take_a_string_form():
    assert from_json(U256, "0x10") == from_json(U256, "16") == from_json(U256, 16) == 16
    assert from_json(I256, "-0x10") == from_json(I128, "-16") == -16
    with pytest.raises(DecodeError):
        from_json(I128, 4.0)


def test_input_forms():
    expected = (7, "n", IDENT, Timestamp(5))
    assert from_json(ROW, [7, {"some": "n"}, IDENT.to_hex(), 5]) == expected
    assert (
        from_json(
            ROW,
            {
                "id": 7,
                "name": "n" and {"0": "n"},
                "who": "0x" + IDENT.to_hex(),
                "at": {"__timestamp_micros_since_unix_epoch__": 5},
            },
        )
        == expected
    )
    assert from_json(option(U8), None) is None
    assert from_json(TIMESTAMP, "1970-01-01T00:00:01Z") == Timestamp(1_000_000)
    assert from_json(SCHEDULE_AT, {"Interval": {"__time_duration_micros__": 3}}) == ScheduleAt.interval(
        TimeDuration(3)
    )
    assert from_json(SumType.of("red", "green"), "green") == SumValue(1, ())
    assert from_json(SumType.of("red", "green"), [0, []]) == SumValue(0, ())
    assert from_json(BYTES, [1, 2]) == b"\x01\x02"
    assert from_json(BYTES, "0102") == b"\x01\x02"
    assert from_json(CONNECTION_ID, {"__connection_id__": 258}) == ConnectionId(258)


def test_wide_integers():
    assert to_json(I256, -255) == "-0xff"
    assert from_json(I256, "-0xff") == -255
    assert to_json(U128, 1 << 100) == 1 << 100
    assert from_json(U128, str(1 << 100)) == 1 << 100


@pytest.mark.parametrize(
    ("ty", "value", "message"),
    [
        (U8, 256, "out of range"),
        (U8, True, "expected U8"),
        (ROW, [1, 2], "expected 4 element"),
        (ROW, {"id": 1}, "missing field 'name'"),
        (ROW, {"id": 1, "bogus": 2}, "unknown field"),
        (option(U8), {"maybe": 1}, "unknown variant"),
        (IDENTITY, "zz", "expected"),
        (BYTES, "xyz", "invalid hex"),
    ],
)
def test_bad_json_is_a_decode_error(ty, value, message):
    with pytest.raises(DecodeError, match=message):
        from_json(ty, value)


def _as_f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_an_f32_prints_as_the_shortest_decimal_that_reads_back_as_it():
    """As upstream's `sql` smoketest (test_sql_format) expects: 594806.56, not the double 594806.5625."""
    assert json.dumps(to_json(F32, _as_f32(594806.56))) == "594806.56"
    assert json.dumps(to_json(F32, _as_f32(0.1))) == "0.1"
    assert json.dumps(to_json(F64, -3454353.345389043)) == "-3454353.345389043"


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_the_short_form_of_an_f32_is_the_same_f32(value):
    short = to_json(F32, value)
    assert _as_f32(short) == value
    assert len(repr(short)) <= len(repr(value))
    assert from_json(F32, short) == value  # read back as the f32 it stands for


@pytest.mark.parametrize("value", ["nothex", {"__identity__": "zz"}, "0x" + "g" * 64])
def test_a_bad_identity_says_what_an_identity_looks_like(value) -> None:
    from spacetimedb.sats.json import from_json
    from spacetimedb.sats.types import IDENTITY

    with pytest.raises(DecodeError, match=r"expected Identity, got .*: an identity is 64 hex digits") as info:
        from_json(IDENTITY, value)
    assert "U256" not in str(info.value) and "not an integer" not in str(info.value)
