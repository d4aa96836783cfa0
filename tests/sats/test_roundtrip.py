"""Property tests: random types and values round-trip through BSATN and SATS-JSON."""

import json

from hypothesis import given, settings

from spacetimedb.sats import codec
from spacetimedb.sats import json as sats_json
from spacetimedb.sats.check import check_value
from tests.strategies import typed_values


@settings(max_examples=400, deadline=None)
@given(typed_values())
def test_bsatn_round_trip(tv):
    ty, value = tv
    c = codec(ty)
    data = c.encode(value)
    assert c.decode(data) == value
    assert len(data) >= c.min_size
    if c.fixed_size is not None:
        assert len(data) == c.fixed_size
    check_value(ty, value)


@settings(max_examples=400, deadline=None)
@given(typed_values())
def test_json_round_trip_typed_and_untyped(tv):
    ty, value = tv
    jc = sats_json.json_codec(ty)
    typed = json.loads(json.dumps(jc.to_json(value)))
    untyped = json.loads(json.dumps(jc.to_json_untyped(value)))
    assert jc.from_json(typed) == value
    assert jc.from_json(untyped) == value
