"""PostgreSQL protocol 3.0 framing: reading the frontend's messages from a stream, building the backend's.

Every frontend message is checked against hard bounds before anything is buffered (the startup packet at most
10,000 bytes, as PostgreSQL; any other message at most ``MAX_MESSAGE_BYTES``), and every field is read through
``Body``, which refuses to read past the message. A violation is a ``ProtocolViolation``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP_BYTES = 10_000
MAX_MESSAGE_BYTES = 8 << 20

_INT16 = struct.Struct(">h")
_UINT16 = struct.Struct(">H")
_INT32 = struct.Struct(">i")
_HEADER = struct.Struct(">ci")
_FIELD = struct.Struct(">ihihih")  # table oid, column number, type oid, type size, type modifier, format


class ProtocolViolation(Exception):
    """The frontend sent something that is not a valid message of protocol 3.0."""


@dataclass(frozen=True, slots=True)
class Startup:
    """The first packet of a connection: ``code`` says which (protocol 3.0, SSL or GSS request, cancel)."""

    code: int
    parameters: dict[str, str]


class Body:
    """A cursor over one message's bytes; every read checks that the bytes are there."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ProtocolViolation("a message ends before its fields do")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def int16(self) -> int:
        return int(_INT16.unpack(self._take(2))[0])

    def uint16(self) -> int:
        return int(_UINT16.unpack(self._take(2))[0])

    def int32(self) -> int:
        return int(_INT32.unpack(self._take(4))[0])

    def byte(self) -> bytes:
        return self._take(1)

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolViolation("a string is not terminated")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation("a string is not valid UTF-8") from None

    def value(self) -> bytes | None:
        """A length-prefixed value (length -1: NULL)."""
        size = self.int32()
        if size == -1:
            return None
        if size < -1:
            raise ProtocolViolation(f"a value has a negative length ({size})")
        return self._take(size)

    def int16_list(self, what: str, limit: int = 65_535) -> list[int]:
        count = self.int16()
        if count < 0 or count > limit:
            raise ProtocolViolation(f"an invalid count of {what}: {count}")
        return [self.int16() for _ in range(count)]

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolViolation("a message is longer than its fields")


async def read_startup(reader: asyncio.StreamReader) -> Startup:
    header = await reader.readexactly(8)
    length, code = struct.unpack(">ii", header)
    if length < 8 or length > MAX_STARTUP_BYTES:
        raise ProtocolViolation(f"an invalid startup packet length: {length}")
    body = Body(await reader.readexactly(length - 8))
    if code != PROTOCOL_3_0:
        return Startup(code, {})
    parameters: dict[str, str] = {}
    while True:
        name = body.cstring()
        if not name:
            break
        parameters[name] = body.cstring()
    body.end()
    return Startup(code, parameters)


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, Body]:
    """The next message: its type byte and body."""
    kind, length = _HEADER.unpack(await reader.readexactly(5))
    if length < 4 or length - 4 > MAX_MESSAGE_BYTES:
        raise ProtocolViolation(f"an invalid message length: {length}")
    return kind, Body(await reader.readexactly(length - 4))


# ---- backend messages -------------------------------------------------------------------------------------------


def message(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return kind + _INT32.pack(len(body) + 4) + body


def cstring(text: str) -> bytes:
    return text.encode("utf-8", "replace").replace(b"\0", b"?") + b"\0"


def int16(value: int) -> bytes:
    return _INT16.pack(value)


def int32(value: int) -> bytes:
    return _INT32.pack(value)


AUTH_CLEARTEXT = message(b"R", int32(3))
AUTH_OK = message(b"R", int32(0))
PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
NO_DATA = message(b"n")
EMPTY_QUERY = message(b"I")


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstring(name), cstring(value))


def backend_key_data(process: int, secret: int) -> bytes:
    return message(b"K", int32(process), int32(secret))


def ready_for_query(status: bytes = b"I") -> bytes:
    return message(b"Z", status)


def command_complete(tag: str) -> bytes:
    return message(b"C", cstring(tag))


def parameter_description(oids: Sequence[int]) -> bytes:
    return message(b"t", int16(len(oids)), *(_INT32.pack(oid) for oid in oids))


def row_description(fields: Iterable[tuple[str, int, int, int]]) -> bytes:
    """``fields``: (name, type oid, type size, format) per column."""
    parts = []
    for name, oid, size, fmt in fields:
        parts.append(cstring(name) + _FIELD.pack(0, 0, oid, size, -1, fmt))
    return message(b"T", int16(len(parts)), *parts)


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [int16(len(values))]
    for value in values:
        if value is None:
            parts.append(int32(-1))
        else:
            parts.append(int32(len(value)))
            parts.append(value)
    return message(b"D", *parts)


def _report(kind: bytes, severity: str, code: str, text: str, detail: str | None) -> bytes:
    fields = [b"S" + cstring(severity), b"V" + cstring(severity), b"C" + cstring(code), b"M" + cstring(text)]
    if detail:
        fields.append(b"D" + cstring(detail))
    return message(kind, *fields, b"\0")


def error_response(code: str, text: str, severity: str = "ERROR", detail: str | None = None) -> bytes:
    return _report(b"E", severity, code, text, detail)


def notice_response(code: str, text: str, severity: str = "NOTICE") -> bytes:
    return _report(b"N", severity, code, text, None)
