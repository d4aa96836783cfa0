"""The PostgreSQL front end's codecs without a server: numeric in binary, parameters, and the local answers."""

import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetimedb.server.pgwire import catalog
from spacetimedb.server.pgwire.messages import Body, ProtocolViolation, data_row, error_response
from spacetimedb.server.pgwire.types import NUMERIC, ParamError, numeric_binary, param_literal


@given(st.integers(min_value=-(2**256), max_value=2**256))
def test_numeric_binary_round_trips_any_wide_integer(number):
    assert param_literal(numeric_binary(Decimal(number)), True, NUMERIC) == ("number", str(number))


def test_numeric_binary_matches_postgresql_layout():
    # 12345678 = [1234, 5678] base 10000, weight 1, positive, scale 0
    assert numeric_binary(Decimal(12345678)) == struct.pack(">hhHHHH", 2, 1, 0, 0, 1234, 5678)
    assert numeric_binary(Decimal(-10000)) == struct.pack(">hhHHH", 1, 1, 0x4000, 0, 1)
    assert numeric_binary(Decimal(0)) == struct.pack(">hhHH", 0, 0, 0, 0)


def test_bad_binary_parameters_are_refused_cleanly():
    with pytest.raises(ParamError):
        param_literal(b"\x00\x01", True, 20)  # an int8 needs 8 bytes
    with pytest.raises(ParamError):
        param_literal(struct.pack(">hhHH", 5, 0, 0, 0), True, NUMERIC)  # digits missing
    with pytest.raises(ParamError):
        param_literal(b"\xff", False, 25)  # text that is not UTF-8
    with pytest.raises(ParamError):
        param_literal(b"x", True, 600)  # a type with no binary reader
    assert param_literal(None, True, 20) == ("null", "NULL")


def test_a_body_never_reads_past_its_message():
    body = Body(b"abc")
    with pytest.raises(ProtocolViolation):
        body.cstring()
    body = Body(struct.pack(">i", 10) + b"short")
    with pytest.raises(ProtocolViolation):
        body.value()


def test_backend_messages_are_framed():
    assert data_row([b"1", None]) == b"D" + struct.pack(">ihi", 15, 2, 1) + b"1" + struct.pack(">i", -1)
    assert error_response("42601", "bad\0text").startswith(b"E")
    assert b"bad?text" in error_response("42601", "bad\0text")


@pytest.mark.parametrize(
    ("query", "tag"),
    [("BEGIN", "BEGIN"), ("begin isolation level serializable;", "BEGIN"), ("COMMIT", "COMMIT"), ("end", "COMMIT"),
     ("ROLLBACK;", "ROLLBACK"), ("START TRANSACTION READ ONLY", "START TRANSACTION")],
)  # fmt: skip
def test_transaction_control_is_a_noop_with_a_notice(query, tag):
    answer = catalog.local_answer(query)
    assert answer is not None and answer.tag == tag and answer.notice and "own transaction" in answer.notice


def test_probes_are_answered_and_the_dialect_keeps_the_rest():
    version = catalog.local_answer("select version()")
    assert version is not None and version.value is not None and version.value.startswith("PostgreSQL 16.0")
    show = catalog.local_answer("SHOW client_encoding")
    assert show is not None and show.value == "UTF8"
    assert catalog.local_answer("SHOW row_limit") is None  # the dialect's own variable
    assert catalog.local_answer("SELECT * FROM t") is None
    assert catalog.local_answer("BEGIN; SELECT * FROM t") is None
