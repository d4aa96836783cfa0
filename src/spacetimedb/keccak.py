"""Keccak-256 (the pre-standard SHA-3 that SpacetimeDB hashes module programs with).

``hashlib.sha3_256`` differs from it only in the padding byte, which hashlib does not let us change, so this is
a small pure-Python sponge; module programs are small and hashed once per publish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

_RATE = 136  # bytes absorbed per permutation for a 256-bit output
_MASK = (1 << 64) - 1
_ROUND_CONSTANTS = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
# rotation offsets, indexed by lane x + 5 * y
_ROTATIONS = (
    0, 1, 62, 28, 27,
    36, 44, 6, 55, 20,
    3, 10, 43, 25, 39,
    41, 45, 15, 21, 8,
    18, 2, 61, 56, 14,
)  # fmt: skip


def _rotate(expr: str, shift: int) -> str:
    if shift == 0:
        return expr
    return f"((({expr}) << {shift}) | (({expr}) >> {64 - shift})) & {_MASK}"


def _permutation_source() -> str:
    """Source of the 24-round Keccak-f[1600] permutation with the 25 lanes in local variables.

    Generated rather than written with loops: lanes in locals and no inner loops make it several times faster
    in CPython, which matters for multi-megabyte programs.
    """
    a = [f"a{i}" for i in range(25)]
    lines = [
        "def _permute(lanes, _rc=_ROUND_CONSTANTS):",
        f"    {', '.join(a)} = lanes",
        "    for rc in _rc:",
    ]
    body = []
    for x in range(5):
        body.append(f"c{x} = a{x} ^ a{x + 5} ^ a{x + 10} ^ a{x + 15} ^ a{x + 20}")
    for x in range(5):
        body.append(f"d{x} = c{(x - 1) % 5} ^ ({_rotate(f'c{(x + 1) % 5}', 1)})")
    b = [""] * 25
    for x in range(5):
        for y in range(5):
            body.append(f"e{x + 5 * y} = a{x + 5 * y} ^ d{x}")
            b[y + 5 * ((2 * x + 3 * y) % 5)] = _rotate(f"e{x + 5 * y}", _ROTATIONS[x + 5 * y])
    for i in range(25):
        body.append(f"b{i} = {b[i]}")
    for y in range(0, 25, 5):
        for x in range(5):
            body.append(f"a{x + y} = b{x + y} ^ ((~b{(x + 1) % 5 + y}) & b{(x + 2) % 5 + y})")
    body.append("a0 ^= rc")
    lines += [f"        {line}" for line in body]
    lines.append(f"    lanes[:] = [{', '.join(a)}]")
    return "\n".join(lines) + "\n"


_namespace: dict[str, object] = {"_ROUND_CONSTANTS": _ROUND_CONSTANTS}
exec(compile(_permutation_source(), "<keccak-f1600>", "exec"), _namespace)
_permute = cast(Callable[[list[int]], None], _namespace["_permute"])  # made by exec just above


def keccak256(data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte Keccak-256 digest of ``data``."""
    message = bytearray(data)
    message.append(0x01)
    message.extend(b"\x00" * ((-len(message)) % _RATE))
    message[-1] |= 0x80
    lanes = [0] * 25
    for start in range(0, len(message), _RATE):
        block = message[start : start + _RATE]
        for i in range(_RATE // 8):
            lanes[i] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        _permute(lanes)
    return b"".join(lane.to_bytes(8, "little") for lane in lanes[:4])
