"""Byte sizes as people write them (``2GiB``, ``64k``) and read them; any layer may use this module (it imports
nothing from ``spacetimedb``)."""

from __future__ import annotations


def format_size(n: int) -> str:
    """``200 KiB`` for 204800, ``1000 bytes`` for what is not a whole unit."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gib": 1 << 30,
}


def parse_size(text: str) -> int:
    """``2GiB``, ``512MiB``, ``64k`` or a number of bytes; 0 means no limit."""
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(number) :]
    if not number or unit not in _UNITS:
        raise ValueError(f"expected a size like 2GiB, 512MiB or a number of bytes, got {text!r}")
    return int(float(number) * _UNITS[unit])
