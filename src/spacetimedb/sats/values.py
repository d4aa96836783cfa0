"""Python classes for SATS values that are not plain builtins: sums, nested options and the special types.

All of them are immutable, hashable and totally ordered (in SATS order), so they can be index keys.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import time
from typing import Any, ClassVar, NamedTuple, Self

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_U256_MAX = (1 << 256) - 1
_U128_MAX = (1 << 128) - 1
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


class SumValue(NamedTuple):
    """A value of a sum type: the variant's index and its payload (``()`` for a unit variant)."""

    tag: int
    value: Any = ()


class Some(NamedTuple):
    """The ``some`` case of an option whose payload is itself an option (``Option<Option<T>>``)."""

    value: Any


def _check_int(value: int, lo: int, hi: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} needs an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} out of range: {value}")
    return value


class _WideId:
    """Shared behaviour of Identity and ConnectionId: an unsigned integer shown as big-endian hex."""

    __slots__ = ("_value",)
    _BYTES: int = 0
    _NAME: str = ""

    def __init__(self, value: int) -> None:
        self._value = _check_int(value, 0, (1 << (8 * self._BYTES)) - 1, self._NAME)

    @classmethod
    def from_hex(cls, text: str) -> Self:
        digits = text[2:] if text[:2] in ("0x", "0X") else text
        if len(digits) != 2 * cls._BYTES:
            raise ValueError(
                f"{cls._NAME} hex must have {2 * cls._BYTES} digits, got {len(digits)}: {text!r}"
            )
        try:
            return cls(int(digits, 16))
        except ValueError:
            raise ValueError(f"invalid {cls._NAME} hex: {text!r}") from None

    @classmethod
    def from_be_bytes(cls, data: bytes) -> Self:
        if len(data) != cls._BYTES:
            raise ValueError(f"{cls._NAME} needs {cls._BYTES} bytes, got {len(data)}")
        return cls(int.from_bytes(data, "big"))

    @classmethod
    def from_le_bytes(cls, data: bytes) -> Self:
        if len(data) != cls._BYTES:
            raise ValueError(f"{cls._NAME} needs {cls._BYTES} bytes, got {len(data)}")
        return cls(int.from_bytes(data, "little"))

    @classmethod
    def zero(cls) -> Self:
        return cls(0)

    @property
    def value(self) -> int:
        return self._value

    def to_hex(self) -> str:
        """Lowercase big-endian hex without ``0x`` (the form used in URLs, headers and JWTs)."""
        return format(self._value, f"0{2 * self._BYTES}x")

    def to_be_bytes(self) -> bytes:
        return self._value.to_bytes(self._BYTES, "big")

    def to_le_bytes(self) -> bytes:
        """The BSATN form."""
        return self._value.to_bytes(self._BYTES, "little")

    def __int__(self) -> int:
        return self._value

    def __str__(self) -> str:
        return self.to_hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(0x{self.to_hex()})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._value == self._value

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self._NAME, self._value))

    def __lt__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._value < other._value

    def __le__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._value <= other._value

    def __gt__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._value > other._value

    def __ge__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._value >= other._value

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (type(self), (self._value,))


class Identity(_WideId):
    """A 256-bit identity of a client or a database."""

    __slots__ = ()
    _BYTES = 32
    _NAME = "Identity"


class ConnectionId(_WideId):
    """A 128-bit id of one client connection; zero means "no connection"."""

    __slots__ = ()
    _BYTES = 16
    _NAME = "ConnectionId"

    @classmethod
    def random(cls) -> ConnectionId:
        while True:
            value = int.from_bytes(os.urandom(16), "big")
            if value:
                return cls(value)


class Uuid(_WideId):
    """A 128-bit UUID."""

    __slots__ = ()
    _BYTES = 16
    _NAME = "Uuid"

    @classmethod
    def random_v4(cls) -> Uuid:
        raw = bytearray(secrets.token_bytes(16))
        raw[6] = (raw[6] & 0x0F) | 0x40
        raw[8] = (raw[8] & 0x3F) | 0x80
        return cls(int.from_bytes(raw, "big"))


class _Micros:
    """Shared behaviour of Timestamp and TimeDuration: a signed 64-bit count of microseconds."""

    __slots__ = ("_micros",)
    _NAME: str = ""

    def __init__(self, micros: int) -> None:
        self._micros = _check_int(micros, _I64_MIN, _I64_MAX, self._NAME)

    @property
    def micros(self) -> int:
        return self._micros

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._micros == self._micros

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self._NAME, self._micros))

    def __lt__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._micros < other._micros

    def __le__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._micros <= other._micros

    def __gt__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._micros > other._micros

    def __ge__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._micros >= other._micros

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (type(self), (self._micros,))


class TimeDuration(_Micros):
    """A signed duration in microseconds."""

    __slots__ = ()
    _NAME = "TimeDuration"

    @classmethod
    def from_seconds(cls, seconds: float) -> TimeDuration:
        return cls(round(seconds * 1_000_000))

    @classmethod
    def from_timedelta(cls, delta: _dt.timedelta) -> TimeDuration:
        return cls((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)

    def to_timedelta(self) -> _dt.timedelta:
        return _dt.timedelta(microseconds=self._micros)

    @property
    def seconds(self) -> float:
        return self._micros / 1_000_000

    def __add__(self, other: Any) -> TimeDuration:
        if type(other) is not TimeDuration:
            return NotImplemented
        return TimeDuration(self._micros + other._micros)

    def __sub__(self, other: Any) -> TimeDuration:
        if type(other) is not TimeDuration:
            return NotImplemented
        return TimeDuration(self._micros - other._micros)

    def __neg__(self) -> TimeDuration:
        return TimeDuration(-self._micros)

    def __abs__(self) -> TimeDuration:
        return TimeDuration(abs(self._micros))

    def __str__(self) -> str:
        sign = "-" if self._micros < 0 else "+"
        secs, micros = divmod(abs(self._micros), 1_000_000)
        return f"{sign}{secs}.{micros:06d}"

    def __repr__(self) -> str:
        return f"TimeDuration({self._micros}us)"


class Timestamp(_Micros):
    """A point in time: signed microseconds since the Unix epoch (UTC)."""

    __slots__ = ()
    _NAME = "Timestamp"
    UNIX_EPOCH: Timestamp

    @classmethod
    def now(cls) -> Timestamp:
        now = object.__new__(cls)  # every reducer call takes one: skip the range check of a value that fits
        now._micros = time.time_ns() // 1000
        return now

    @classmethod
    def from_datetime(cls, moment: _dt.datetime) -> Timestamp:
        if moment.tzinfo is None:
            raise ValueError("Timestamp.from_datetime needs a timezone-aware datetime")
        delta = moment - _EPOCH
        return cls((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse an RFC 3339 / ISO-8601 string with an offset (``Z`` accepted)."""
        try:
            moment = _dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"invalid timestamp: {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.UTC)
        return cls.from_datetime(moment)

    def to_datetime(self) -> _dt.datetime:
        return _EPOCH + _dt.timedelta(microseconds=self._micros)

    def isoformat(self) -> str:
        """RFC 3339 in UTC with microseconds, e.g. ``2024-01-02T03:04:05.000006+00:00``."""
        try:
            return self.to_datetime().isoformat(timespec="microseconds")
        except OverflowError:
            return f"{self._micros}us since epoch"

    def duration_since(self, earlier: Timestamp) -> TimeDuration:
        return TimeDuration(self._micros - earlier._micros)

    def __add__(self, other: Any) -> Timestamp:
        if type(other) is not TimeDuration:
            return NotImplemented
        return Timestamp(self._micros + other.micros)

    def __sub__(self, other: Any) -> Any:
        if type(other) is TimeDuration:
            return Timestamp(self._micros - other.micros)
        if type(other) is Timestamp:
            return TimeDuration(self._micros - other._micros)
        return NotImplemented

    def __str__(self) -> str:
        return self.isoformat()

    def __repr__(self) -> str:
        return f"Timestamp({self.isoformat()})"


Timestamp.UNIX_EPOCH = Timestamp(0)


class _ScheduleAtFields(NamedTuple):
    tag: int
    value: Any


class ScheduleAt(_ScheduleAtFields):
    """When a scheduled reducer runs: tag 0 ``Interval(TimeDuration)`` or tag 1 ``Time(Timestamp)``."""

    # The tags live on a subclass because a NamedTuple body may only declare fields (for type checkers).
    __slots__ = ()
    INTERVAL: ClassVar[int] = 0
    TIME: ClassVar[int] = 1

    @classmethod
    def interval(cls, every: TimeDuration | float) -> ScheduleAt:
        """Repeat every ``every`` (a TimeDuration or seconds)."""
        if not isinstance(every, TimeDuration):
            every = TimeDuration.from_seconds(every)
        return cls(0, every)

    @classmethod
    def time(cls, at: Timestamp | _dt.datetime) -> ScheduleAt:
        """Run once at ``at``."""
        if isinstance(at, _dt.datetime):
            at = Timestamp.from_datetime(at)
        if not isinstance(at, Timestamp):
            raise TypeError(f"ScheduleAt.time needs a Timestamp, got {type(at).__name__}")
        return cls(1, at)

    @property
    def is_interval(self) -> bool:
        return self.tag == 0

    def __repr__(self) -> str:
        return f"ScheduleAt.{'interval' if self.tag == 0 else 'time'}({self.value!r})"
