"""Upstream's standalone/pg_wire.rs: the PostgreSQL wire protocol (`spacetime start --pg-port`) as psql and a
driver see it, with the module pg-wire rewritten in Python. One server (with --pg-port) serves the file; each test
publishes its own database as upstream does.

Upstream's module names its integer columns `i8`, `u16`, ... and SpacetimeDB gives them the canonical names
`i_8`, `u_16`, ... that psql shows; a Python module's column has the one name it is declared with, so ours declares
the canonical names, and so do its enums (upstream's variants `Inactive`, `Gray` are `inactive`, `gray`). A
variant of a Python sum type is a `@type` record, so upstream's `Color::Gray(u8)` becomes a `gray` variant holding
a record with one `u8` field, which psql shows as the same JSON with that record inside."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess
from tests.smoketests.runtime_helpers import Smoke, publish, running_server, saved_token

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

PG_WIRE = """
    import enum

    from spacetimedb import (
        ConnectionId, Identity, ReducerContext, TimeDuration, Timestamp, Uuid, f32, f64, i8, i16, i32, i64, i128, i256,
        reducer, table, type, u8, u16, u32, u64, u128, u256,
    )


    @table(name="t_ints", public=True)
    class TInts:
        i_8: i8
        i_16: i16
        i_32: i32
        i_64: i64
        i_128: i128
        i_256: i256


    @table(name="t_ints_tuple", public=True)
    class TIntsTuple:
        tuple: TInts


    @table(name="t_uints", public=True)
    class TUints:
        u_8: u8
        u_16: u16
        u_32: u32
        u_64: u64
        u_128: u128
        u_256: u256


    @table(name="t_uints_tuple", public=True)
    class TUintsTuple:
        tuple: TUints


    @table(name="t_others", public=True)
    class TOthers:
        bool: bool
        f_32: f32
        f_64: f64
        str: str
        bytes: bytes
        identity: Identity
        connection_id: ConnectionId
        timestamp: Timestamp
        duration: TimeDuration
        uuid: Uuid


    @table(name="t_others_tuple", public=True)
    class TOthersTuple:
        tuple: TOthers


    class Action(enum.Enum):
        inactive = 0
        active = 1


    @table(name="t_simple_enum", public=True)
    class TSimpleEnum:
        id: u32
        action: Action


    @type
    class gray:
        value: u8


    @type
    class rgb:  # a Python sum type has two variants at least; upstream's `Color` has only `Gray`
        value: u32


    Color = type("Color", gray | rgb)


    @table(name="t_enum", public=True)
    class TEnum:
        id: u32
        color: Color


    @reducer
    def test(ctx: ReducerContext) -> None:
        ints = TInts(i_8=-25, i_16=-3224, i_32=-23443, i_64=-2344353, i_128=-234434897853, i_256=-234434897853)
        ctx.db.t_ints.insert(ints)
        ctx.db.t_ints_tuple.insert(TIntsTuple(tuple=ints))
        uints = TUints(u_8=105, u_16=1050, u_32=83892, u_64=48937498, u_128=4378528978889, u_256=4378528978889)
        ctx.db.t_uints.insert(uints)
        ctx.db.t_uints_tuple.insert(TUintsTuple(tuple=uints))
        ctx.db.t_simple_enum.insert(TSimpleEnum(id=1, action=Action.inactive))
        ctx.db.t_simple_enum.insert(TSimpleEnum(id=2, action=Action.active))
        ctx.db.t_enum.insert(TEnum(id=1, color=gray(value=128)))
"""


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("pg-wire") / "data", "--pg-port", "0") as server:
        yield server


@pytest.fixture
def owner(tmp_path: Path, pg_server: ServerProcess) -> User:
    return User(tmp_path / "owner", pg_server.url)


@pytest.fixture
def deploy(owner: User, db_name: str, python_module: Callable[[str], Path]) -> Callable[[], Smoke]:
    return lambda: publish(owner, db_name, python_module(PG_WIRE))


def psql(server: ServerProcess, database: str, token: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Upstream's `psql -h HOST -p PORT -U postgres -d DATABASE --quiet -c SQL` with the token as password."""
    assert server.pg_port is not None
    return subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(server.pg_port), "-U", "postgres", "-d", database, "--quiet",
         "-c", sql],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"},
    )  # fmt: skip


def assert_psql(server: ServerProcess, smoke: Smoke, sql: str, expected: str) -> None:
    done = psql(server, smoke.database, saved_token(smoke.user), sql)
    assert done.returncode == 0, done.stderr
    shown = "\n".join(line.rstrip() for line in done.stdout.strip().splitlines())
    assert shown == "\n".join(line.rstrip() for line in expected.splitlines())


def test_sql_format(pg_server: ServerProcess, deploy: Callable[[], Smoke]) -> None:
    """Upstream test_sql_format: how psql shows integers of every width, a product column (as JSON), a simple
    enum (the variant's name) and an enum with a payload (JSON)."""
    smoke = deploy()
    smoke.call("test")
    assert_psql(
        pg_server,
        smoke,
        "SELECT * FROM t_ints",
        """i_8 | i_16  |  i_32  |   i_64   |     i_128     |     i_256
-----+-------+--------+----------+---------------+---------------
 -25 | -3224 | -23443 | -2344353 | -234434897853 | -234434897853
(1 row)""",
    )
    assert_psql(
        pg_server,
        smoke,
        "SELECT * FROM t_ints_tuple",
        """tuple
---------------------------------------------------------------------------------------------------------------
 {"i_8": -25, "i_16": -3224, "i_32": -23443, "i_64": -2344353, "i_128": -234434897853, "i_256": -234434897853}
(1 row)""",
    )
    assert_psql(
        pg_server,
        smoke,
        "SELECT * FROM t_uints",
        """u_8 | u_16 | u_32  |   u_64   |     u_128     |     u_256
-----+------+-------+----------+---------------+---------------
 105 | 1050 | 83892 | 48937498 | 4378528978889 | 4378528978889
(1 row)""",
    )
    assert_psql(
        pg_server,
        smoke,
        "SELECT * FROM t_uints_tuple",
        """tuple
-------------------------------------------------------------------------------------------------------------
 {"u_8": 105, "u_16": 1050, "u_32": 83892, "u_64": 48937498, "u_128": 4378528978889, "u_256": 4378528978889}
(1 row)""",
    )
    assert_psql(
        pg_server,
        smoke,
        "SELECT * FROM t_simple_enum",
        """id |  action
----+----------
  1 | inactive
  2 | active
(2 rows)""",
    )
    assert_psql(
        pg_server,
        smoke,
        "SELECT * FROM t_enum",
        """id |          color
----+--------------------------
  1 | {"gray": {"value": 128}}
(1 row)""",
    )


def test_sql_conn(pg_server: ServerProcess, deploy: Callable[[], Smoke]) -> None:
    """Upstream test_sql_conn: a PostgreSQL driver connects with the token as password, reads a row's integers as
    text over the simple query protocol, and keeps using one connection (upstream's query names the columns by
    their accessors `u8`, `u16`; ours by the module's names)."""
    smoke = deploy()
    smoke.call("test")
    assert pg_server.pg_port is not None
    with psycopg.connect(
        host="127.0.0.1",
        port=pg_server.pg_port,
        user="postgres",
        password=saved_token(smoke.user),
        dbname=smoke.database,
        autocommit=True,
        connect_timeout=10,
        cursor_factory=psycopg.ClientCursor,
    ) as conn:
        row = conn.execute("select * from t_uints where u_8 = 105 and u_16 = 1050").fetchone()
        assert row is not None
        assert [str(value) for value in row] == [
            "105",
            "1050",
            "83892",
            "48937498",
            "4378528978889",
            "4378528978889",
        ]
        for _ in range(10):
            assert conn.execute("select count(*) as t from t_uints").fetchone() == (1,)


def test_failures(pg_server: ServerProcess, deploy: Callable[[], Smoke]) -> None:
    """Upstream test_failures: an empty query answers nothing; a bad token is refused with "Invalid token"; SQL
    the server does not support (CASE, a `$1` parameter in a simple query) is refused as unsupported."""
    smoke = deploy()
    token = saved_token(smoke.user)
    empty = psql(pg_server, smoke.database, token, "")
    assert empty.returncode == 0 and empty.stdout.strip() == "", empty

    refused = psql(pg_server, smoke.database, "invalid_token", "SELECT * FROM t_uints")
    assert refused.returncode != 0 and "Invalid token" in refused.stderr, refused

    for unsupported in (
        "SELECT CASE a WHEN 1 THEN 'one' ELSE 'other' END FROM t_uints",
        "SELECT * FROM t_uints where u_8 = $1",
    ):
        done = psql(pg_server, smoke.database, token, unsupported)
        assert done.returncode != 0 and "nsupported" in done.stderr, (unsupported, done)
