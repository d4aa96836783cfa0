"""Hand-computed BSATN test vectors for every type, from the rule: little-endian fixed-width numbers,
bool as one byte, u32 length prefixes for strings and arrays, products as concatenated fields, sums as a
u8 tag + payload."""

import pytest

from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    ArrayType,
    ConnectionId,
    Identity,
    ProductType,
    ScheduleAt,
    Some,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    decode,
    encode,
    option,
    result,
)

VECTORS = [
    (BOOL, False, "00"),
    (BOOL, True, "01"),
    (U8, 0xAB, "ab"),
    (I8, -2, "fe"),
    (U16, 0x1234, "3412"),
    (I16, -1, "ffff"),
    (U32, 1, "01000000"),
    (I32, -2, "feffffff"),
    (U64, 0x0102030405060708, "0807060504030201"),
    (I64, -1, "ffffffffffffffff"),
    (U128, 1, "01" + "00" * 15),
    (I128, -1, "ff" * 16),
    (U256, (1 << 255) + 2, "02" + "00" * 30 + "80"),
    (I256, -2, "fe" + "ff" * 31),
    (F32, 1.0, "0000803f"),
    (F64, -2.5, "00000000000004c0"),
    (STRING, "", "00000000"),
    (STRING, "hi", "02000000" + "6869"),
    (STRING, "é", "02000000" + "c3a9"),
    (BYTES, b"\x01\x02", "02000000" + "0102"),
    (ArrayType(U16), (1, 2), "02000000" + "0100" + "0200"),
    (ArrayType(STRING), ("a",), "01000000" + "01000000" + "61"),
    (ArrayType(ArrayType(BOOL)), ((True,), ()), "02000000" + "01000000" + "01" + "00000000"),
    (UNIT, (), ""),
    (ProductType.of(("a", U8), ("b", STRING)), (7, "x"), "07" + "01000000" + "78"),
    (ProductType.of(U32, U64, STRING), (1, 2, "ab"), "01000000" + "0200000000000000" + "02000000" + "6162"),
    (SumType.of("a", ("b", U16)), SumValue(0, ()), "00"),
    (SumType.of("a", ("b", U16)), SumValue(1, 5), "01" + "0500"),
    (option(U32), None, "01"),
    (option(U32), 3, "00" + "03000000"),
    (option(option(U8)), None, "01"),
    (option(option(U8)), Some(None), "00" + "01"),
    (option(option(U8)), Some(9), "00" + "00" + "09"),
    (result(U8, STRING), SumValue(1, "no"), "01" + "02000000" + "6e6f"),
    (IDENTITY, Identity.from_hex("c2" + "00" * 30 + "01"), "01" + "00" * 30 + "c2"),
    (CONNECTION_ID, ConnectionId(0x0102), "0201" + "00" * 14),
    (TIMESTAMP, Timestamp(1_700_000_000_000_000), (1_700_000_000_000_000).to_bytes(8, "little").hex()),
    (TIMESTAMP, Timestamp(-1), "ff" * 8),
    (TIME_DURATION, TimeDuration(1_000_000), "40420f0000000000"),
    (SCHEDULE_AT, ScheduleAt.interval(TimeDuration(1)), "00" + "0100000000000000"),
    (SCHEDULE_AT, ScheduleAt.time(Timestamp(2)), "01" + "0200000000000000"),
    # the worked example of the protocol reference: a row (1, "hi") of table t(id u32, text str)
    (ProductType.of(("id", U32), ("text", STRING)), (1, "hi"), "01000000" + "02000000" + "6869"),
]


@pytest.mark.parametrize(("ty", "value", "hex_bytes"), VECTORS, ids=[f"{t!r}={v!r}" for t, v, _ in VECTORS])
def test_vector(ty, value, hex_bytes):
    assert encode(ty, value).hex() == hex_bytes
    assert decode(ty, bytes.fromhex(hex_bytes)) == value


def test_arrays_encode_from_lists_and_decode_to_hashable_tuples():
    ty = ArrayType(ArrayType(U16))
    data = encode(ty, [[1], [2, 3]])
    decoded = decode(ty, data)
    assert decoded == ((1,), (2, 3)) and hash(decoded)
