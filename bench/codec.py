"""BSATN codec throughput: our compiled codecs vs hand-written ``struct`` code (the floor).

Run: .venv/bin/python bench/codec.py [--rows N]
Prints rows/s for encoding and decoding a (u32, u64, str) row and a (u32, u64, u64) row, and the ratio
ours / hand-written (1.0 = as fast as the best pure-Python code can be; below 1 = slower).
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable
from typing import Any

from spacetimedb.sats import STRING, U32, U64, ProductType, codec

_U32_U64_U32 = struct.Struct("<IQI")
_U32_U64_U64 = struct.Struct("<IQQ")


def hand_encode_str_row(row: tuple[int, int, str]) -> bytes:
    data = row[2].encode("utf-8")
    return _U32_U64_U32.pack(row[0], row[1], len(data)) + data


def hand_decode_str_row(buf: bytes) -> tuple[int, int, str]:
    a, b, n = _U32_U64_U32.unpack_from(buf, 0)
    return (a, b, buf[16 : 16 + n].decode("utf-8"))


def hand_encode_int_row(row: tuple[int, int, int]) -> bytes:
    return _U32_U64_U64.pack(*row)


def hand_decode_int_row(buf: bytes) -> tuple[int, int, int]:
    return _U32_U64_U64.unpack(buf)


def rate(fn: Callable[[Any], Any], items: list[Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()

    str_row = codec(ProductType.of(("id", U32), ("n", U64), ("name", STRING)))
    int_row = codec(ProductType.of(("id", U32), ("n", U64), ("m", U64)))
    str_rows = [(i, i * 7, f"user-{i}") for i in range(args.rows)]
    int_rows = [(i, i * 7, i * 11) for i in range(args.rows)]
    str_bytes = [str_row.encode(r) for r in str_rows]
    int_bytes = [int_row.encode(r) for r in int_rows]
    assert str_bytes[5] == hand_encode_str_row(str_rows[5]) and int_bytes[5] == hand_encode_int_row(
        int_rows[5]
    )

    cases = [
        ("encode (u32, u64, str)", str_row.encode, hand_encode_str_row, str_rows),
        ("decode (u32, u64, str)", str_row.decode, hand_decode_str_row, str_bytes),
        ("encode (u32, u64, u64)", int_row.encode, hand_encode_int_row, int_rows),
        ("decode (u32, u64, u64)", int_row.decode, hand_decode_int_row, int_bytes),
    ]
    print(f"{'case':26} {'ours rows/s':>14} {'struct rows/s':>14} {'ours/struct':>12}")
    for name, ours, hand, items in cases:
        r_ours = rate(ours, items)
        r_hand = rate(hand, items)
        print(f"{name:26} {r_ours:14,.0f} {r_hand:14,.0f} {r_ours / r_hand:12.2f}")


if __name__ == "__main__":
    main()
