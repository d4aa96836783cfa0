"""The PostgreSQL wire protocol (``--pg-port``) against real clients: psql, psycopg 3 and asyncpg, on a real server.

Queries over PostgreSQL follow the rules of ``POST /sql`` (visibility, RLS, ownership, error texts); every column
type arrives as the PostgreSQL type upstream documents, decoded by the drivers into native Python values."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import shutil
import struct
import subprocess
import uuid
from decimal import Decimal

import aiohttp
import asyncpg
import psycopg
import pytest

from tests.conftest import start_server
from tests.server.pgmodule import MODULE

DATABASE = "pgt"
NEIGHBOUR = "neighbour"
TIMESTAMP = dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)
DURATION = dt.timedelta(days=1, hours=1, minutes=1, seconds=1, microseconds=1)
CONNECTION = bytes(range(1, 17))
UUID = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
# the values fill() writes in `everything`, after id and the identity, as the drivers decode them
NUMBERS = [
    255, 65535, 4294967295, Decimal(2**64 - 1), Decimal(2**128 - 1), Decimal(2**256 - 1),
    -128, -32768, -(2**31), -(2**63), Decimal(-(2**127)), Decimal(-(2**255)), 1.5, -2.25,
]  # fmt: skip


async def _identity(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    response = await http.post(f"{url}/v1/identity")
    return await response.json()


async def _publish(
    http: aiohttp.ClientSession, url: str, name: str, owner: dict[str, str], stranger: str
) -> str:
    """Publish and fill ``name``; its identity."""
    auth = {"Authorization": f"Bearer {owner['token']}"}
    response = await http.put(f"{url}/v1/database/{name}", data=MODULE, headers=auth)
    assert response.status == 200, await response.text()
    identity = (await response.json())["Success"]["database_identity"]
    response = await http.post(f"{url}/v1/database/{name}/call/fill", json=["0x" + stranger], headers=auth)
    assert response.status == 200, await response.text()
    return identity


class Setup:
    def __init__(self, server, owner: dict[str, str], stranger: dict[str, str], identity: str) -> None:
        self.identity = identity  # the database's
        self.server = server
        self.owner = owner
        self.stranger = stranger

    @property
    def port(self) -> int:
        assert self.server.pg_port is not None
        return self.server.pg_port

    def psycopg(self, token: str | None = None, database: str = DATABASE, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="anyone", dbname=database,
            password=self.owner["token"] if token is None else token, connect_timeout=10, **kwargs,
        )  # fmt: skip

    async def asyncpg(self, token: str | None = None, database: str = DATABASE) -> asyncpg.Connection:
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="anyone", database=database,
            password=self.owner["token"] if token is None else token, timeout=10, ssl=False, command_timeout=60,
        )  # fmt: skip

    def http_sql(self, query: str, token: str) -> tuple[int, str]:
        async def post() -> tuple[int, str]:
            async with aiohttp.ClientSession() as http:
                response = await http.post(
                    f"{self.server.url}/v1/database/{DATABASE}/sql",
                    data=query,
                    headers={"Authorization": f"Bearer {token}"},
                )
                return response.status, await response.text()

        return asyncio.run(post())


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("pgwire") / "data", extra_args=["--pg-port", "0"])

    async def setup() -> tuple[dict[str, str], dict[str, str], str]:
        async with aiohttp.ClientSession() as http:
            owner, stranger = await _identity(http, server.url), await _identity(http, server.url)
            identity = await _publish(http, server.url, DATABASE, owner, stranger["identity"])
            await _publish(http, server.url, NEIGHBOUR, owner, stranger["identity"])
            return owner, stranger, identity

    try:
        yield Setup(server, *asyncio.run(setup()))
    finally:
        server.shut_down()


# ---- psql ------------------------------------------------------------------------------------------------------------


def _psql() -> str:
    """psql, installed with Debian's postgresql-client where missing and possible; else the test is skipped."""
    found = shutil.which("psql")
    if found is not None:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(
            "psql is not installed and cannot be here (needs apt-get as root): apt install postgresql-client"
        )
    install = subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql-client"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )  # fmt: skip
    found = shutil.which("psql")
    if found is None:
        pytest.skip(f"psql could not be installed with apt-get: {install.stderr.strip()[-300:]}")
    return found


def test_psql_connects_and_runs_a_query(pg):
    env = {**os.environ, "PGPASSWORD": pg.owner["token"], "PGCONNECT_TIMEOUT": "10"}
    dsn = f"host=127.0.0.1 port={pg.port} user=any dbname={DATABASE} sslmode=prefer"
    done = subprocess.run(
        [_psql(), dsn, "-X", "-v", "ON_ERROR_STOP=1", "-c", "SELECT name, age FROM person WHERE id = 2",
         "-c", "SELECT version()", "-c", "SHOW server_version"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "person2 |  22" in done.stdout
    assert "(1 row)" in done.stdout
    assert "SpacetimeDB" in done.stdout
    assert "ERROR" not in done.stderr
    done = subprocess.run(
        [_psql(), dsn, "-X", "-c", "\\dt"], capture_output=True, text=True, timeout=60, env=env
    )
    assert "psql's \\d commands" in done.stderr and "not supported" in done.stderr


# ---- reads and writes -------------------------------------------------------------------------------------------------


def test_psycopg_parameterized_reads_and_owner_dml(pg):
    with pg.psycopg() as conn:
        assert conn.execute("SELECT name, age FROM person WHERE id = %s", [4]).fetchall() == [("person4", 24)]
        # server-side prepared (psycopg prepares after the first execution with prepare=True)
        for _ in range(3):
            rows = conn.execute("SELECT id FROM person WHERE age > %s AND age < %s", [25, 28], prepare=True)
            assert sorted(r[0] for r in rows.fetchall()) == [6, 7]
        cursor = conn.execute("INSERT INTO person (id, name, age) VALUES (%s, %s, %s)", [101, "psy", 40])
        assert cursor.rowcount == 1
        with pytest.raises(psycopg.errors.UniqueViolation, match="violates unique constraint"):
            conn.execute("INSERT INTO person (id, name, age) VALUES (%s, %s, %s)", [101, "again", 1])
        assert conn.execute("UPDATE person SET name = %s WHERE id = %s", ["psy2", 101]).rowcount == 1
        assert conn.execute("SELECT name FROM person WHERE id = %s", [101]).fetchone() == ("psy2",)
        assert conn.execute("DELETE FROM person WHERE id = %s", [101]).rowcount == 1
        assert conn.execute("SELECT name FROM person WHERE id = %s", [101]).fetchall() == []


def test_asyncpg_parameterized_reads_and_owner_dml(pg):
    async def scenario() -> None:
        conn = await pg.asyncpg()
        try:
            assert await conn.fetchrow("SELECT name, age FROM person WHERE id = $1", 4) == ("person4", 24)
            lookup = await conn.prepare("SELECT name FROM person WHERE id = $1")
            assert [await lookup.fetchval(i) for i in (1, 2, 3)] == ["person1", "person2", "person3"]
            assert await conn.execute(
                "INSERT INTO person (id, name, age) VALUES ($1, $2, $3)", 102, "apg", 41
            ) == ("INSERT 0 1")
            assert await conn.execute("UPDATE person SET age = $1 WHERE id = $2", 42, 102) == "UPDATE 1"
            assert await conn.fetchval("SELECT age FROM person WHERE id = $1", 102) == 42
            assert await conn.execute("DELETE FROM person WHERE name = $1", "apg") == "DELETE 1"
            assert await conn.fetch("SELECT * FROM person WHERE id = $1", 102) == []
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_several_statements_in_one_simple_query(pg):
    with pg.psycopg() as conn:
        cursor = conn.execute("SELECT name FROM person WHERE id = 1; SELECT age FROM person WHERE id = 2")
        assert cursor.fetchall() == [("person1",)]
        assert cursor.nextset()
        assert cursor.fetchall() == [(22,)]
        assert cursor.statusmessage == "SELECT 1"
        cursor = conn.execute("SHOW row_limit")  # the dialect's own variable, not a PostgreSQL setting
        assert cursor.statusmessage == "SHOW"
        assert [column.name for column in cursor.description] == ["value"]


def test_begin_and_commit_are_accepted_with_a_notice(pg):
    notices = []
    with pg.psycopg(autocommit=False) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
        assert conn.execute("SELECT name FROM person WHERE id = %s", [5]).fetchall() == [("person5",)]
        conn.commit()
    assert any("does not support transactions" in n for n in notices)


# ---- types -------------------------------------------------------------------------------------------------------------


def _expected_everything(pg) -> list:
    identity = bytes.fromhex(pg.owner["identity"])
    return [
        1,
        *NUMBERS,
        True,
        "h\u00e9llo",
        bytes([0, 1, 254, 255]),
        identity,
        CONNECTION,
        TIMESTAMP,
        "GREEN",
        UUID,
        DURATION,
    ]


def test_psycopg_decodes_every_column_type(pg):
    with pg.psycopg() as conn:
        cursor = conn.execute("SELECT * FROM everything")
        row = list(cursor.fetchone())
        types = [column.type_code for column in cursor.description]
    assert row[:24] == _expected_everything(pg)
    assert row[24:] == [{"x": 3, "y": -4}, [1, 2, 3], {"none": {}}]  # json
    assert types == [
        20, 21, 23, 20, 1700, 1700, 1700, 21, 21, 23, 20, 1700, 1700, 700, 701, 16, 25, 17, 17, 17, 1184, 25, 2950,
        1186, 114, 114, 114,
    ]  # fmt: skip


def test_asyncpg_decodes_every_column_type_in_binary(pg):
    async def scenario() -> list:
        conn = await pg.asyncpg()
        try:
            row = await conn.fetchrow("SELECT * FROM everything")
            return list(row)
        finally:
            await conn.close()

    row = asyncio.run(scenario())
    assert row[:24] == _expected_everything(pg)
    assert [json.loads(v) for v in row[24:]] == [{"x": 3, "y": -4}, [1, 2, 3], {"none": {}}]


SCALARS = "INSERT INTO scalars VALUES ({})".format(", ".join(f"${i}" for i in range(1, 25)))


def _scalar_values(pg, row_id: int) -> list:
    identity = bytes.fromhex(pg.stranger["identity"])
    return [
        row_id, 200, 60000, 4000000000, Decimal(2**64 - 2), Decimal(2**100), Decimal(2**200 + row_id), -100, -30000,
        -(2**30), -(2**62), Decimal(-(2**100)), Decimal(-(2**200)), 0.5, 1e300, False, "it's \u2603",
        b"\x00\xff", identity, CONNECTION, TIMESTAMP, "RED", UUID, "some text",
    ]  # fmt: skip


def test_psycopg_parameters_round_trip_every_literal_type(pg):
    values = _scalar_values(pg, 10)
    with pg.psycopg() as conn:
        query = "INSERT INTO scalars VALUES ({})".format(", ".join(["%s"] * len(values)))
        assert conn.execute(query, values).rowcount == 1
        back = conn.execute(
            "SELECT * FROM scalars WHERE id = %s AND a_bytes = %s", [10, b"\x00\xff"]
        ).fetchone()
        assert list(back[:-1]) == values[:-1]
        assert back[-1] == {"some": "some text"}  # options are sums: json, as upstream
        # NULL for an option's none, and a text parameter compared with each typed column
        conn.execute("UPDATE scalars SET a_option = %s WHERE id = %s", [None, 10])
        assert conn.execute("SELECT a_option FROM scalars WHERE id = %s", [10]).fetchone() == ({"none": {}},)
        assert conn.execute("SELECT id FROM scalars WHERE a_color = %s", ["RED"]).fetchall() == [(10,)]
        assert conn.execute("SELECT id FROM scalars WHERE a_timestamp = %s", [TIMESTAMP]).fetchall() == [
            (10,)
        ]


def test_asyncpg_parameters_round_trip_every_literal_type(pg):
    values = _scalar_values(pg, 11)

    async def scenario() -> tuple:
        conn = await pg.asyncpg()
        try:
            assert await conn.execute(SCALARS, *values) == "INSERT 0 1"
            found = await conn.fetchrow(
                "SELECT * FROM scalars WHERE id = $1 AND a_identity = $2", 11, values[18]
            )
            by_u256 = await conn.fetchval("SELECT id FROM scalars WHERE a_u256 = $1", Decimal(2**200 + 11))
            return tuple(found), by_u256
        finally:
            await conn.close()

    row, by_u256 = asyncio.run(scenario())
    assert list(row[:-1]) == values[:-1]
    assert json.loads(row[-1]) == {"some": "some text"}
    assert by_u256 == 11


# ---- rules and errors ----------------------------------------------------------------------------------------------


def test_a_private_table_is_refused_to_a_non_owner_as_over_http(pg):
    status, http_error = pg.http_sql("SELECT * FROM secret", pg.stranger["token"])
    assert status == 400
    with pg.psycopg(pg.stranger["token"]) as conn, pytest.raises(psycopg.errors.UndefinedTable) as refused:
        conn.execute("SELECT * FROM secret")
    assert refused.value.diag.message_primary == http_error
    with pg.psycopg() as conn:  # the owner sees it
        assert conn.execute("SELECT * FROM secret").fetchall() == [(1,)]

    async def stranger_dml() -> str:
        conn = await pg.asyncpg(pg.stranger["token"])
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DELETE FROM person")  # no arguments: the simple query protocol
            with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
                await conn.execute("DELETE FROM person WHERE id = $1", 1)
            return str(refused.value)
        finally:
            await conn.close()

    assert "is not authorized to run SQL DML statements" in asyncio.run(stranger_dml())


def test_row_level_security_filters_a_non_owners_read(pg):
    with pg.psycopg(pg.stranger["token"]) as conn:
        assert conn.execute("SELECT text FROM mailbox").fetchall() == [("for the stranger",)]
    with pg.psycopg() as conn:
        assert sorted(conn.execute("SELECT text FROM mailbox").fetchall()) == [
            ("for the owner",),
            ("for the stranger",),
        ]


def test_a_syntax_error_then_a_good_query_on_the_same_connection(pg):
    _, http_error = pg.http_sql("SELEC * FROM person", pg.owner["token"])
    with pg.psycopg() as conn:
        with pytest.raises(psycopg.errors.SyntaxError) as failed:
            conn.execute("SELEC * FROM person")
        assert failed.value.diag.message_primary == http_error
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute("SELEC * FROM person WHERE id = %s", [1])
        assert conn.execute("SELECT name FROM person WHERE id = %s", [1]).fetchall() == [("person1",)]

    async def scenario() -> str:
        conn = await pg.asyncpg()
        try:
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.fetch("SELEC * FROM person WHERE id = $1", 1)
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM nowhere")
            return await conn.fetchval("SELECT name FROM person WHERE id = $1", 1)
        finally:
            await conn.close()

    assert asyncio.run(scenario()) == "person1"


def test_a_bad_token_and_an_unknown_database_are_refused(pg):
    with pytest.raises(psycopg.OperationalError) as refused:
        pg.psycopg("not-a-token").close()
    assert "malformed token" in str(refused.value)

    async def scenario() -> None:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await pg.asyncpg(pg.owner["token"][:-4] + "AAAA")
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await pg.asyncpg(database="no-such-database")

    asyncio.run(scenario())


def test_a_database_is_named_or_given_by_identity_and_tls_is_declined(pg):
    with pg.psycopg(database=pg.identity) as conn:
        assert conn.execute("SELECT name FROM person WHERE id = %s", [3]).fetchone() == ("person3",)

    async def ssl_request() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", pg.port)
        try:
            writer.write(struct.pack(">ii", 8, 80877103))
            return await asyncio.wait_for(reader.readexactly(1), 10)
        finally:
            writer.close()

    assert asyncio.run(ssl_request()) == b"N"


def test_a_hundred_concurrent_connections(pg):
    async def one(i: int) -> str:
        conn = await pg.asyncpg(pg.stranger["token"] if i % 2 else None)
        try:
            return await conn.fetchval("SELECT name FROM person WHERE id = $1", i % 10 + 1)
        finally:
            await conn.close()

    async def scenario() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(100)))

    assert asyncio.run(scenario()) == [f"person{i % 10 + 1}" for i in range(100)]


# ---- hostile input ----------------------------------------------------------------------------------------------------


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack(">i", len(body) + 4) + body


def _startup(database: str) -> bytes:
    body = struct.pack(">i", 196608) + b"user\0fuzz\0database\0" + database.encode() + b"\0\0"
    return struct.pack(">i", len(body) + 4) + body


def _queries() -> list[bytes]:
    """Valid frontend messages of every kind the server reads after startup."""
    parse = _message(b"P", b"s1\0SELECT * FROM person WHERE id = $1\0" + struct.pack(">hi", 1, 20))
    bind = _message(
        b"B", b"p1\0s1\0" + struct.pack(">hhhi", 1, 1, 1, 8) + struct.pack(">q", 3) + struct.pack(">hh", 1, 1)
    )
    return [
        _message(b"Q", b"SELECT * FROM person WHERE id = 1\0"),
        parse,
        bind,
        _message(b"D", b"Ss1\0"),
        _message(b"D", b"Pp1\0"),
        _message(b"E", b"p1\0" + struct.pack(">i", 0)),
        _message(b"C", b"Ss1\0"),
        _message(b"S", b""),
        _message(b"H", b""),
    ]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(6)
        if choice == 0 and data:  # flip a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 1 and len(data) > 1:  # cut it short
            del data[rng.randrange(1, len(data)) :]
        elif choice == 2:  # insert junk
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif choice == 3 and len(data) >= 5:  # a hostile length
            at = rng.choice([0, 1]) if data[:1] != b"\0" else 0
            data[at : at + 4] = struct.pack(">i", rng.choice([-1, 0, 3, 7, 2**31 - 1, 10_001, 8 << 20 | 1]))
        elif choice == 4 and data:  # an unknown message type
            data[0] = rng.randrange(256)
        else:  # a NUL-free string: unterminated
            data = data.replace(b"\0", b"A", 1)
    return bytes(data)


async def _fuzz_one(port: int, payload: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        deadline = asyncio.get_running_loop().time() + 0.5
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                if not await asyncio.wait_for(reader.read(65536), left):
                    break  # the server closed it
            except TimeoutError:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()


def test_a_thousand_malformed_messages_never_crash_the_server(pg):
    rng = random.Random(17)
    token = pg.owner["token"].encode()
    password = _message(b"p", token + b"\0")
    queries = _queries()
    payloads = []
    for i in range(1000):
        if i % 2 == 0:  # a mutated startup packet (or SSL request) and password
            first = _startup(DATABASE) if i % 10 else struct.pack(">ii", 8, 80877103)
            payloads.append(_mutate(first, rng) + (password if rng.random() < 0.5 else b""))
        else:  # a valid login, then mutated queries
            messages = rng.sample(queries, rng.randint(1, 4))
            payloads.append(_startup(DATABASE) + password + b"".join(_mutate(q, rng) for q in messages))

    async def scenario() -> tuple[str, str]:
        neighbour = await pg.asyncpg(database=NEIGHBOUR)
        try:
            before = await neighbour.fetchval("SELECT name FROM person WHERE id = $1", 7)
            for start in range(0, len(payloads), 100):
                await asyncio.gather(*(_fuzz_one(pg.port, p) for p in payloads[start : start + 100]))
            after = await neighbour.fetchval("SELECT name FROM person WHERE id = $1", 7)
        finally:
            await neighbour.close()
        return before, after

    assert asyncio.run(scenario()) == ("person7", "person7")
    assert pg.server.process.poll() is None
    with pg.psycopg() as conn:  # the fuzzed database still answers, and so does its HTTP API
        assert conn.execute("SELECT COUNT(*) AS n FROM person").fetchone() == (10,)
    status, body = pg.http_sql("SELECT name FROM person WHERE id = 7", pg.owner["token"])
    assert status == 200 and "person7" in body
