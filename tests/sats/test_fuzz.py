"""Random and mutated bytes fed to the decoders of many types raise DecodeError and nothing else."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetimedb.sats import DecodeError, codec
from tests.strategies import typed_values

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    out = [data[:cut] for cut in range(len(data))]
    for _ in range(20):
        buf = bytearray(data)
        if buf:
            for _ in range(rng.randint(1, 3)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        out.append(bytes(buf))
    out.append(data + bytes([rng.randrange(256)]))
    out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    return out


@settings(max_examples=250, deadline=None)
@given(typed_values(), st.integers(0, 2**32))
def test_decoder_only_raises_decode_error(tv, seed):
    ty, value = tv
    c = codec(ty)
    data = c.encode(value)
    for candidate in _mutations(data, random.Random(seed)):
        try:
            c.decode(candidate)
        except DecodeError:
            pass
