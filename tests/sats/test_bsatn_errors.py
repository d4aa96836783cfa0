import pytest

from spacetimedb.sats import (
    BOOL,
    BYTES,
    F32,
    I8,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIMESTAMP,
    U8,
    U32,
    U128,
    UNIT,
    ArrayType,
    DecodeError,
    EncodeError,
    Identity,
    ProductType,
    SumType,
    SumValue,
    TimeDuration,
    codec,
    decode,
    encode,
    option,
)

ROW = ProductType.of(("id", U32), ("score", I8), ("name", STRING))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((1 << 32, 0, "x"), "out of range for U32"),
        ((1, 200, "x"), "value 200 out of range for I8"),
        ((1, 0, 5), "expected String"),
        ((1, 0), r"expected a product of 3 field\(s\)"),
        (("1", 0, "x"), "expected U32"),
        ((1, 0, "\ud800"), "not valid Unicode"),
    ],
)
def test_encode_errors_name_type_value_and_field(value, message):
    with pytest.raises(EncodeError, match=message) as info:
        encode(ROW, value)
    assert str(info.value)


def test_encode_checks_bool_and_special_classes():
    with pytest.raises(EncodeError, match="expected Bool"):
        encode(ProductType.of(("b", BOOL)), (1,))
    with pytest.raises(EncodeError, match="expected Identity"):
        encode(ProductType.of(("who", IDENTITY)), ("c200",))
    with pytest.raises(EncodeError, match="expected Timestamp"):
        encode(ProductType.of(("at", TIMESTAMP)), (TimeDuration(1),))
    with pytest.raises(EncodeError, match="expected ScheduleAt"):
        encode(SCHEDULE_AT, SumValue(0, TimeDuration(1)))
    with pytest.raises(EncodeError, match="out of range for F32"):
        encode(F32, 1e300)
    with pytest.raises(EncodeError, match="out of range for U128"):
        encode(U128, -1)
    with pytest.raises(EncodeError, match="sum tag 3 out of range"):
        encode(SumType.of("a", "b"), SumValue(3, ()))
    with pytest.raises(EncodeError, match=r"\[0\]"):
        encode(ArrayType(U8), [300])


def test_products_accept_records_and_mappings():
    class Rec:
        def __init__(self):
            self.id, self.score, self.name = 1, -1, "n"

    expected = encode(ROW, (1, -1, "n"))
    assert encode(ROW, Rec()) == expected
    assert encode(ROW, {"id": 1, "score": -1, "name": "n"}) == expected
    assert encode(ROW, [1, -1, "n"]) == expected


@pytest.mark.parametrize(
    ("ty", "data", "message"),
    [
        (U32, b"\x01\x02", "input too short"),
        (STRING, b"\x05\x00\x00\x00ab", "needed 5 byte"),
        (STRING, b"\x02\x00\x00\x00\xff\xfe", "not valid UTF-8"),
        (BOOL, b"\x02", "invalid bool byte 2"),
        (option(U8), b"\x07", "unknown sum tag 7"),
        (SumType.of("a", "b"), b"\x02", "unknown sum tag 2"),
        (U8, b"\x01\x02", "1 trailing byte"),
        (ArrayType(U32), b"\xff\xff\xff\xff", "exceeds the remaining input"),
        (ArrayType(UNIT), b"\xff\xff\xff\xff", "exceeds the remaining input"),
        (BYTES, b"\x10\x00\x00\x00abc", "needed 16 byte"),
        (IDENTITY, b"\x00" * 31, "needed 32 byte"),
        (ROW, b"", "input too short"),
    ],
)
def test_decode_errors(ty, data, message):
    with pytest.raises(DecodeError, match=message):
        decode(ty, data)


def test_decode_from_memoryview_and_offsets():
    c = codec(ROW)
    data = b"junk" + encode(ROW, (9, -9, "mv"))
    value, end = c.decode_from(memoryview(data), 4)
    assert value == (9, -9, "mv") and end == len(data)


def test_recursive_type_through_typespace():
    from spacetimedb.sats import RefType, Typespace

    ts = Typespace()
    tree = RefType(0)
    ts.types.append(ProductType.of(("value", U32), ("children", ArrayType(tree))))
    value = (1, ((2, ()), (3, ((4, ()),))))
    data = encode(tree, value, ts)
    assert decode(tree, data, ts) == value
    deep = b"\x00\x00\x00\x00" + b"\x01\x00\x00\x00" * 100_000  # a chain far deeper than the recursion limit
    with pytest.raises(DecodeError):
        decode(tree, deep, ts)


def test_codecs_are_cached_and_report_sizes():
    assert codec(ROW) is codec(ROW)
    assert codec(ROW).min_size == 4 + 1 + 4
    assert codec(ROW).fixed_size is None
    assert codec(ProductType.of(U32, U8)).fixed_size == 5
    assert codec(IDENTITY).fixed_size == 32
    assert Identity(1) < Identity(2)
