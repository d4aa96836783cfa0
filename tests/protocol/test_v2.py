"""Protocol v2 bytes, checked against the worked example of the protocol reference (§4.5) and the generic
SATS codec of the message types."""

import gzip
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetimedb.protocol import v2
from spacetimedb.sats import ConnectionId, DecodeError, Identity, SumValue, Timestamp, codec
from spacetimedb.sats import codec as sats_codec


def test_worked_example_subscribe_and_call_reducer():
    sub = bytes.fromhex("00" + "07000000" + "00000000" + "01000000" + "0f000000") + b"SELECT * FROM t"
    (message,) = v2.decode_client_messages(sub, batched=False)
    assert message.tag == v2.SUBSCRIBE
    assert message.fields == (7, (0,), ("SELECT * FROM t",))
    call = (
        bytes.fromhex("03" + "08000000" + "00" + "03000000")
        + b"add"
        + bytes.fromhex("06000000" + "02000000")
        + b"hi"
    )
    (message,) = v2.decode_client_messages(call, batched=False)
    assert message.tag == v2.CALL_REDUCER and message.fields == (8, 0, "add", b"\x02\x00\x00\x00hi")
    assert v2.encode_client_message(v2.CALL_REDUCER, 8, 0, "add", b"\x02\x00\x00\x00hi") == call


def test_worked_example_subscribe_applied_and_reducer_result():
    row = bytes.fromhex("01000000" + "02000000") + b"hi"
    applied = v2.subscribe_applied(7, 0, [("t", [row])])
    expected = (
        bytes.fromhex("01" + "07000000" + "00000000" + "01000000" + "01000000")
        + b"t"
        + bytes.fromhex("00" + "0a00" + "0a000000")
        + row
    )
    assert applied == expected  # a single row: fixed-size hint
    ts = Timestamp(1_700_000_000_000_000)
    update = v2.encode_query_set_update(0, [v2.TableUpdateRows("t", [row], [])])
    result = v2.reducer_result_ok(8, ts, [update])
    decoded = v2.decode_server_messages(result)[0]
    assert decoded.tag == v2.REDUCER_RESULT
    request_id, timestamp, outcome = decoded.value
    assert (request_id, timestamp) == (8, ts)
    ret_value, tx_update = outcome.value
    assert outcome.tag == v2.OUTCOME_OK and ret_value == b""
    ((query_set_id, tables),) = tx_update[0]
    assert query_set_id == (0,)
    ((name, rows),) = tables
    ((inserts, deletes),) = [r.value for r in rows]
    assert name == "t" and v2.decode_row_list(inserts) == [row] and v2.decode_row_list(deletes) == []


def test_fast_encoders_match_the_generic_codec():
    ident = Identity(0xC200 << 240 | 5)
    conn = ConnectionId(77)
    ts = Timestamp(12)
    rows_a = [b"\x01\x02", b"\x03\x04"]
    rows_b = [b"\x01", b"\x02\x03", b""]
    cases = [
        (v2.initial_connection(ident, conn, "tok"), SumValue(0, (ident, conn, "tok"))),
        (v2.subscription_error(None, 3, "bad"), SumValue(3, (None, (3,), "bad"))),
        (v2.subscription_error(4, 3, "bad"), SumValue(3, (4, (3,), "bad"))),
        (v2.unsubscribe_applied(1, 2, None), SumValue(2, (1, (2,), None))),
        (v2.one_off_query_result(9, None, "no such table"), SumValue(5, (9, SumValue(1, "no such table")))),
        (v2.reducer_result_err(5, ts, "boom"), SumValue(6, (5, ts, SumValue(2, b"\x04\x00\x00\x00boom")))),
        (v2.reducer_result_internal_error(5, ts, "panic"), SumValue(6, (5, ts, SumValue(3, "panic")))),
    ]
    server = codec(v2.SERVER_MESSAGE)
    for fast, generic in cases:
        assert fast == server.encode(generic)
    listing = v2.encode_row_list(rows_b)
    assert codec(v2.BSATN_ROW_LIST).decode(listing) == (SumValue(1, (0, 1, 3)), b"\x01\x02\x03")
    assert v2.decode_row_list(codec(v2.BSATN_ROW_LIST).decode(v2.encode_row_list(rows_a))) == rows_a
    assert v2.decode_row_list(codec(v2.BSATN_ROW_LIST).decode(listing)) == rows_b


def test_v3_batches_and_frames():
    one = v2.encode_client_message(v2.ONE_OFF_QUERY, 1, "SELECT * FROM t")
    two = v2.encode_client_message(v2.UNSUBSCRIBE, 2, (5,), 1)
    messages = v2.decode_client_messages(one + two, batched=True)
    assert [m.tag for m in messages] == [v2.ONE_OFF_QUERY, v2.UNSUBSCRIBE]
    with pytest.raises(DecodeError, match="trailing"):
        v2.decode_client_messages(one + two, batched=False)
    with pytest.raises(DecodeError):
        v2.decode_client_messages(b"", batched=True)
    with pytest.raises(DecodeError):
        v2.decode_client_messages(b"\x09", batched=True)
    big = v2.subscription_error(None, 1, "x" * 5000)
    frame = v2.server_frame([big, big], v2.COMPRESSION_GZIP)
    assert frame[0] == 2 and gzip.decompress(frame[1:]) == big + big
    assert len(v2.decode_server_messages(v2.split_server_frame(frame))) == 2
    assert v2.server_frame([b"\x00small"], v2.COMPRESSION_GZIP)[0] == 0


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.text(max_size=12),
    st.binary(max_size=20),
    st.integers(0, 40),
    st.binary(max_size=3),
)
def test_hand_decoded_call_reducer_agrees_with_the_generic_codec(request_id, flags, reducer, args, cut, junk):
    """CallReducer has a hand-written decoder; on valid, truncated and extended input it must agree with the
    generic codec of the message type, value for value and error for error."""
    message = v2.encode_client_message(v2.CALL_REDUCER, request_id, flags, reducer, args)
    for frame in (message, message[: max(1, len(message) - cut)], message + junk):
        generic = sats_codec(v2.CLIENT_MESSAGE)
        try:
            expected = generic.decode(frame)
        except DecodeError:
            with pytest.raises(DecodeError):
                v2.decode_client_messages(frame, batched=False)
            continue
        (got,) = v2.decode_client_messages(frame, batched=False)
        assert (got.tag, got.fields) == (expected.tag, expected.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12), st.binary(max_size=8), st.integers(0, 3))
def test_hand_decoded_call_reducer_reads_any_name_bytes_as_the_generic_codec(name, args, batch):
    """Names as raw bytes (some not UTF-8), alone and in v3 batches: the hand decoder (with its cache of
    decoded names) agrees with the generic codec, error for error."""
    message = (
        struct.pack("<BIBI", v2.CALL_REDUCER, 7, 0, len(name)) + name + struct.pack("<I", len(args)) + args
    )
    generic = sats_codec(v2.CLIENT_MESSAGE)
    try:
        expected = generic.decode(message)
    except DecodeError:
        with pytest.raises(DecodeError):
            v2.decode_client_messages(message * (batch + 1), batched=True)
        return
    decoded = v2.decode_client_messages(message * (batch + 1), batched=True)
    assert [(m.tag, m.fields) for m in decoded] == [(expected.tag, expected.value)] * (batch + 1)


def test_the_cache_of_reducer_names_is_bounded():
    """A client that calls ever new or huge names cannot grow the decoder's cache past its bounds; the names
    still decode."""
    names = [f"reducer_{number}" for number in range(v2._MAX_REDUCER_NAMES + 50)] + ["x" * 100_000]
    for number, name in enumerate(names):
        message = v2.encode_client_message(v2.CALL_REDUCER, number, 0, name, b"")
        (decoded,) = v2.decode_client_messages(message, batched=False)
        assert decoded.fields[2] == name
    assert len(v2._REDUCER_NAMES) <= v2._MAX_REDUCER_NAMES
    assert max(map(len, v2._REDUCER_NAMES)) <= v2._MAX_CACHED_NAME_BYTES
