"""Errors raised by the SATS codecs."""

from __future__ import annotations


class SatsError(ValueError):
    """Base class of codec errors."""


class DecodeError(SatsError):
    """Input bytes or JSON do not form a value of the expected type; says what and where."""


class EncodeError(SatsError):
    """A Python value does not fit the type it is encoded as (wrong kind, or out of range)."""
