"""Bad input gets a 4xx or a WebSocket close, each with a reason; never a 500, a dead worker or lost data.

``CASES`` is the one table of bad input. A case says what to send, ``Http`` (a request) or ``Frame`` (one
frame on a new WebSocket connection), and what that must get back:

- ``Refused(status, reason)``: an HTTP status (4xx) whose body contains ``reason``;
- ``Closed(code, reason)``: the server closes the connection with ``code`` and a reason that contains
  ``reason`` (1007: the frame's payload cannot be decoded; 1008: it decodes but is not a valid message; 1003:
  a frame of the wrong type for the protocol);
- ``Answered(reason)``: the connection stays open and the next message refuses the request, quoting ``reason``
  (how a bad reducer argument is answered, as in every protocol).

Every case runs against one server (one per xdist worker) with ``examples/chat`` published as ``chat``. After
each case the server must still answer ``/v1/ping`` and commit an HTTP reducer call on ``chat``. A witness
client connected to ``chat`` since the start must also get its own reducer call answered; a worker that had
died would have closed that connection. The ``message`` table must then hold exactly the rows these checks
committed: nothing lost, and nothing added by a bad case.

To add a case, append a ``Case`` to ``CASES``. Put a body or frame that takes more than one line to build in
a helper next to the others (``_zip_with`` patches the header fields of a module zip). In a route,
``{db}`` stands for the chat database. ``as_owner`` sends the owner's token (routes that need it).
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zipfile
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from spacetimedb.protocol import v2
from spacetimedb.protocol.v1json import PROTOCOL_V1_JSON

from ..conftest import ServerProcess, start_server
from .wsclient import ENCODE_STR, RawClient

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


ROOT = Path(__file__).resolve().parents[2]
CHAT = (ROOT / "examples" / "chat" / "quickstart_chat.py").read_bytes()
DATABASE = "chat"
TIMEOUT_SECONDS = 60.0
T = TypeVar("T")


# ---- the table's vocabulary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Http:
    method: str
    route: str  # "{db}" is replaced by the chat database's name
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    as_owner: bool = False


@dataclass(frozen=True)
class Frame:
    protocol: str
    data: bytes
    binary: bool  # the frame's type; the bytes are sent as they are either way (so text can be invalid UTF-8)


@dataclass(frozen=True)
class Refused:
    status: int
    reason: str


@dataclass(frozen=True)
class Closed:
    code: int
    reason: str


@dataclass(frozen=True)
class Answered:
    reason: str


@dataclass(frozen=True)
class Case:
    name: str
    send: Http | Frame
    expect: Refused | Closed | Answered


# ---- bodies and frames -------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
NESTED_100K = b"[" * 100_000 + b"]" * 100_000
CALL = "/v1/database/{db}/call/send_message"
SQL = "/v1/database/{db}/sql"
NAMES = "/v1/database/{db}/names"
PUBLISH_FAILED = "Failed to create or update the database: the module package"
ENTRY = "chat/__init__.py"

# where a zip's header fields are: (struct format, offset in the local header, offset in a central directory
# entry)
_ZIP_FIELDS = {
    "flags": ("<H", 6, 8),
    "method": ("<H", 8, 10),
    "crc": ("<I", 14, 16),
    "compressed_size": ("<I", 18, 20),
    "file_size": ("<I", 22, 24),
}


def _chat_zip(compression: int = zipfile.ZIP_DEFLATED) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo(ENTRY, date_time=(1980, 1, 1, 0, 0, 0)), CHAT, compress_type=compression
        )
    return bytearray(buffer.getvalue())


def _zip_with(compression: int = zipfile.ZIP_DEFLATED, central_only: bool = False, **fields: int) -> bytes:
    """The chat module as a package zip, with header fields overwritten (in the local header too, unless
    ``central_only``: a central directory that lies)."""
    data = _chat_zip(compression)
    central = data.rindex(b"PK\x01\x02")
    for name, value in fields.items():
        fmt, local_offset, central_offset = _ZIP_FIELDS[name]
        struct.pack_into(fmt, data, central + central_offset, value)
        if not central_only:
            struct.pack_into(fmt, data, local_offset, value)
    return bytes(data)


def _zip_with_corrupt_deflate() -> bytes:
    data = _chat_zip()
    name_length, extra_length = struct.unpack_from("<HH", data, 26)
    start = 30 + name_length + extra_length
    data[start : start + 8] = b"\xff" * 8  # block type 3: no such deflate block
    return bytes(data)


def _v1(message: object) -> Frame:
    return Frame(PROTOCOL_V1_JSON, json.dumps(message).encode(), binary=False)


def _v1_raw(text: bytes) -> Frame:
    return Frame(PROTOCOL_V1_JSON, text, binary=False)


def _v1_call(args: str) -> Frame:
    return _v1({"CallReducer": {"request_id": 1, "reducer": "send_message", "args": args, "flags": 0}})


def _unreadable(what: str) -> Refused:
    return Refused(400, f"{PUBLISH_FAILED} {what}")


GARBAGE = b"\xff\x00 garbage, not a client message"

CASES = [
    # JSON nested 100,000 deep, wherever JSON is parsed
    Case(
        "reducer args nested 100k deep",
        Http("POST", CALL, NESTED_100K, JSON),
        Refused(400, "nested too deeply"),
    ),
    Case(
        "names nested 100k deep",
        Http("PUT", NAMES, NESTED_100K, JSON, as_owner=True),
        Refused(400, "nested too deeply"),
    ),
    Case("v1.json frame nested 100k deep", _v1_raw(NESTED_100K), Closed(1007, "nested too deeply")),
    Case("v1.json args nested 100k deep", _v1_call(NESTED_100K.decode()), Closed(1007, "nested too deeply")),
    # charsets: text bodies are UTF-8
    Case(
        "sql with a bogus charset",
        Http("POST", SQL, b"SELECT * FROM message", {"Content-Type": "text/plain; charset=bogus-1"}),
        Refused(415, "unsupported charset `bogus-1`"),
    ),
    Case(
        "call as text/plain with a bogus charset",
        Http("POST", CALL, b'["hi"]', {"Content-Type": "text/plain; charset=bogus-1"}),
        Refused(415, "Content-Type: application/json"),
    ),
    Case(
        "call as JSON with a bogus charset",
        Http("POST", CALL, b'["hi"]', {"Content-Type": "application/json; charset=bogus-1"}),
        Refused(415, "unsupported charset `bogus-1`"),
    ),
    Case(
        "add a name with a bogus charset",
        Http("POST", NAMES, b"chat-alias", {"Content-Type": "text/plain; charset=bogus-1"}, as_owner=True),
        Refused(415, "unsupported charset `bogus-1`"),
    ),
    Case(
        "set names with a bogus charset",
        Http("PUT", NAMES, b'["chat"]', {"Content-Type": "application/json; charset=bogus-1"}, as_owner=True),
        Refused(415, "unsupported charset `bogus-1`"),
    ),
    Case(
        "sql in latin-1",
        Http("POST", SQL, b"SELECT * FROM message", {"Content-Type": "text/plain; charset=latin-1"}),
        Refused(415, "send the body as UTF-8"),
    ),
    # bytes that are not UTF-8, and JSON escapes that spell what UTF-8 cannot hold
    Case(
        "sql not UTF-8",
        Http("POST", SQL, b"SELECT * FROM message WHERE text = '\xff\xfe'"),
        Refused(400, "not valid UTF-8"),
    ),
    Case(
        "call args not UTF-8", Http("POST", CALL, b'["\xed\xa0\x80"]', JSON), Refused(400, "not valid UTF-8")
    ),
    Case(
        "add a name not UTF-8",
        Http("POST", NAMES, b"chat\xff", as_owner=True),
        Refused(400, "not valid UTF-8"),
    ),
    Case(
        "names not JSON",
        Http("PUT", NAMES, b"[chat", JSON, as_owner=True),
        Refused(400, "must be a JSON array of names"),
    ),
    Case(
        "call with a lone surrogate",
        Http("POST", CALL, b'["\\ud800"]', JSON),
        Refused(400, "not valid Unicode"),
    ),
    Case(
        "call with a lone surrogate as an argument's name",
        Http("POST", CALL, b'{"\\ud800": "hi"}', JSON),
        Refused(400, "unknown argument(s) '\\ud800'"),
    ),
    Case("v1.json call with a lone surrogate", _v1_call('["\\ud800"]'), Answered("not valid Unicode")),
    Case(
        "v1.json call with a lone surrogate as an argument's name",
        _v1_call('{"\\ud800": "hi"}'),
        Answered("unknown argument(s)"),
    ),
    Case(
        "v1.json message type that is a lone surrogate",
        _v1_raw(b'{"\\ud800": {}}'),
        Closed(1008, "unknown message type"),
    ),
    # module packages that cannot be read, as an update of `chat` and as a new database
    Case(
        "zip with a bad CRC",
        Http("PUT", "/v1/database/{db}", _zip_with(crc=0xDEADBEEF), as_owner=True),
        _unreadable(f"is corrupt: '{ENTRY}': Bad CRC-32"),
    ),
    Case(
        "zip with a corrupt deflate stream",
        Http("PUT", "/v1/database/{db}", _zip_with_corrupt_deflate(), as_owner=True),
        _unreadable(f"is corrupt: '{ENTRY}': Error -3 while decompressing data"),
    ),
    Case(
        "zip with compression method 99",
        Http("PUT", "/v1/database/{db}", _zip_with(method=99), as_owner=True),
        _unreadable(f"cannot be read: '{ENTRY}' uses compression method 99"),
    ),
    Case(
        "zip with the encrypted flag",
        Http("PUT", "/v1/database/{db}", _zip_with(flags=0x1), as_owner=True),
        _unreadable(f"cannot be read: '{ENTRY}' is encrypted"),
    ),
    Case(
        "zip whose central directory says an entry is smaller",
        Http("PUT", "/v1/database/{db}", _zip_with(central_only=True, file_size=10), as_owner=True),
        _unreadable(f"is corrupt: '{ENTRY}': Bad CRC-32"),
    ),
    Case(
        "zip whose central directory says an entry runs past the end",
        Http(
            "PUT",
            "/v1/database/{db}",
            _zip_with(zipfile.ZIP_STORED, central_only=True, compressed_size=1 << 16, file_size=1 << 16),
            as_owner=True,
        ),
        _unreadable(f"is corrupt: '{ENTRY}': its data ends before the size it declares"),
    ),
    Case(
        "zip that is not a zip",
        Http("PUT", "/v1/database/{db}", b"PK\x03\x04 and then nothing of a zip", as_owner=True),
        _unreadable("is not a valid zip file"),
    ),
    Case(
        "zip with a bad CRC as a new database",
        Http("PUT", "/v1/database/bad-zip-new", _zip_with(crc=0xDEADBEEF), as_owner=True),
        _unreadable(f"is corrupt: '{ENTRY}': Bad CRC-32"),
    ),
    # frames that are not messages of their protocol
    Case("v1.json frame not UTF-8", _v1_raw(b'{"CallReducer\xff": {}}'), Closed(1007, "must be UTF-8")),
    Case("v1.json frame not JSON", _v1_raw(b"{nope"), Closed(1007, "invalid JSON")),
    Case("v1.json unknown message type", _v1({"Nope": {}}), Closed(1008, "unknown message type `Nope`")),
    Case(
        "v1.json message without its request_id",
        _v1({"CallReducer": {"reducer": "send_message", "args": "[]"}}),
        Closed(1008, "`request_id`"),
    ),
    Case(
        "v1.json binary frame", Frame(PROTOCOL_V1_JSON, b"\x00", binary=True), Closed(1003, "binary frames")
    ),
    Case(
        "v2 garbage frame",
        Frame(v2.PROTOCOL_V2, GARBAGE, binary=True),
        Closed(1007, "unknown client message tag"),
    ),
    Case(
        "v3 garbage frame",
        Frame(v2.PROTOCOL_V3, GARBAGE, binary=True),
        Closed(1007, "unknown client message tag"),
    ),
    Case(
        "v3 truncated Subscribe",
        Frame(
            v2.PROTOCOL_V3,
            v2.encode_client_message(v2.SUBSCRIBE, 1, (2,), ("SELECT * FROM user",))[:9],
            binary=True,
        ),
        Closed(1007, "invalid Subscribe at offset 0"),
    ),
    Case("v3 text frame", Frame(v2.PROTOCOL_V3, b"hello", binary=False), Closed(1003, "text frames")),
]


# ---- running the cases against one server ------------------------------------------------------------------


class Harness:
    """One server with `chat` published, a witness client connected to it, and the checks after each case."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.http: aiohttp.ClientSession
        self.owner_token = ""
        self.witness: RawClient
        self.committed = 0  # rows the checks have added to `message`

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(work, TIMEOUT_SECONDS))

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        response = await self.http.post(f"{self.server.url}/v1/identity")
        self.owner_token = (await response.json())["token"]
        response = await self.http.put(
            f"{self.server.url}/v1/database/{DATABASE}", data=CHAT, headers=self._owner()
        )
        assert response.status == 200, await response.text()
        self.witness, _ = await RawClient.connect(self.http, self.server.url, DATABASE, (v2.PROTOCOL_V3,))

    async def stop(self) -> None:
        await self.witness.ws.close()
        await self.http.close()

    def _owner(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.owner_token}"}

    async def request(self, send: Http) -> tuple[int, str]:
        headers = dict(send.headers, **(self._owner() if send.as_owner else {}))
        url = self.server.url + send.route.format(db=DATABASE)
        async with self.http.request(send.method, url, data=send.body, headers=headers) as response:
            return response.status, await response.text()

    async def frame(self, send: Frame) -> aiohttp.WSMessage:
        """The first message the server sends after the frame (a close, or an answer)."""
        url = f"{self.server.url}/v1/database/{DATABASE}/subscribe?compression=None".replace("http", "ws", 1)
        async with self.http.ws_connect(url, protocols=[send.protocol]) as ws:
            await ws.receive()  # the identity token
            await ws.send_frame(
                send.data, aiohttp.WSMsgType.BINARY if send.binary else aiohttp.WSMsgType.TEXT
            )
            return await ws.receive()

    async def assert_unharmed(self) -> None:
        assert self.server.process.poll() is None, "the server process exited"
        async with self.http.get(f"{self.server.url}/v1/ping") as response:
            assert response.status == 200
        status, body = await self.request(Http("POST", CALL, b'["the server still serves"]', JSON))
        assert status == 200, f"an HTTP reducer call after the case: {status} {body}"
        self.committed += 1
        request_id = await self.witness.call("send_message", ENCODE_STR("the witness is still served"))
        result = await self.witness.next_of(v2.REDUCER_RESULT)
        assert result.value[0] == request_id and result.value[2].tag == v2.OUTCOME_OK, result
        self.committed += 1
        status, body = await self.request(Http("POST", SQL, b"SELECT * FROM message"))
        assert status == 200, body
        assert len(json.loads(body)[0]["rows"]) == self.committed, "rows of `message` were lost or slipped in"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    server = start_server(tmp_path_factory.mktemp("bad-input") / "data")
    harness = Harness(server)
    try:
        harness.run(harness.start())
        yield harness
        harness.run(harness.stop())
    finally:
        harness.loop.close()
        server.shut_down()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_with_a_reason(harness: Harness, case: Case) -> None:
    send, expect = case.send, case.expect
    if isinstance(send, Http):
        assert isinstance(expect, Refused), "an HTTP request is refused"
        status, body = harness.run(harness.request(send))
        assert (status, expect.reason in body) == (expect.status, True), f"got {status}: {body[:500]}"
    else:
        message = harness.run(harness.frame(send))
        if isinstance(expect, Closed):
            assert message.type == aiohttp.WSMsgType.CLOSE, f"not closed: {message}"
            assert (message.data, expect.reason in message.extra) == (expect.code, True), f"closed: {message}"
        else:
            assert isinstance(expect, Answered), "a frame is answered or closed"
            assert message.type == aiohttp.WSMsgType.TEXT and expect.reason in message.data, f"got {message}"
    harness.run(harness.assert_unharmed())


def test_the_table_expects_only_client_errors() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), "each case has its own name"
    for case in CASES:
        if isinstance(case.expect, Refused):
            assert 400 <= case.expect.status < 500, case.name
        if isinstance(case.expect, Closed):
            assert case.expect.code in (1003, 1007, 1008), case.name
