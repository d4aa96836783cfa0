"""Keccak-256 (the pre-standard SHA-3 that SpacetimeDB hashes module programs with).

``hashlib.sha3_256`` differs from it only in the padding byte, which hashlib does not let us change (and OpenSSL
3.0 has no Keccak digest), so this uses pycryptodome's C implementation. Programs of SpacetimeDB's own
toolchains are large (a TypeScript bundle is ~250 KiB, a WASM module up to megabytes) and every process that
loads one hashes it: a pure-Python sponge took seconds for each.
"""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte Keccak-256 digest of ``data``."""
    return _keccak.new(digest_bits=256, data=bytes(data)).digest()
