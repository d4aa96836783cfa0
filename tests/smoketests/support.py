"""Helpers of the server-side ports (sql, migrations, rls, ...): upstream's ``Smoketest::sql`` / ``assert_sql`` /
``logs``, and a database owner shared by the tests of one file."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import Result, User
from tests.conftest import ServerProcess
from tests.smoketests.runtime_helpers import saved_token

MODULES = Path(__file__).resolve().parent / "modules"


def module_path(name: str) -> Path:
    """A port module of tests/smoketests/modules: upstream's ``crates/smoketests/modules/<name>``, in Python."""
    return MODULES / f"{name.replace('-', '_')}.py"


def fresh_name() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory, shared_server: ServerProcess) -> User:
    """A user whose config outlives one test, for databases shared by the tests of a file (import it with
    ``shared_server`` into the test file)."""
    return User(tmp_path_factory.mktemp("owner") / "config", shared_server.url)


def publish(user: User, database: str, module: str, *args: str) -> Result:
    """Publish (or update, accepting the migration plan) ``database`` from the port of upstream module ``module``."""
    result = user("publish", database, "-p", str(module_path(module)), "--yes", *args)
    assert result.code == 0, result
    return result


def published(user: User, module: str) -> str:
    """A fresh database running the port of upstream module ``module``."""
    database = fresh_name()
    publish(user, database, module)
    return database


def call(user: User, database: str, reducer: str, *args: str) -> Result:
    result = user("call", database, reducer, *args)
    assert result.code == 0, result
    return result


@functools.lru_cache(maxsize=32)
def _token(user: User) -> str:
    """``saved_token`` once per user: it runs the CLI, and these helpers are for tests that call many times."""
    return saved_token(user)


def http_call(user: User, database: str, reducer: str, *args: object) -> int:
    """``POST /v1/database/DB/call/REDUCER`` as ``user`` with JSON arguments: the HTTP status. For tests whose
    subject is the server, not the CLI, and that call many times (a CLI process costs a Python start-up)."""
    request = urllib.request.Request(
        f"{user.url}/v1/database/{database}/call/{reducer}",
        data=json.dumps(list(args)).encode(),
        headers={"Authorization": f"Bearer {_token(user)}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def http_log_messages(user: User, database: str, count: int) -> list[str]:
    """``log_messages`` over HTTP (``GET /v1/database/DB/logs``, what ``spacetime logs`` reads), for the same
    tests as ``http_call``."""
    request = urllib.request.Request(
        f"{user.url}/v1/database/{database}/logs?num_lines={count}",
        headers={"Authorization": f"Bearer {_token(user)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        lines = response.read().decode().splitlines()
    return [json.loads(line)["message"] for line in lines if line.strip()]


def sql(user: User, database: str, query: str) -> Result:
    return user("sql", database, query)


def sql_output(user: User, database: str, query: str) -> str:
    """``Smoketest::sql``: the query's standard output, trimmed; the query must succeed."""
    result = sql(user, database, query)
    assert result.code == 0, result
    return result.out.strip()


def _trim_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def assert_sql(user: User, database: str, query: str, expected: str) -> None:
    """``Smoketest::assert_sql``: the output equals ``expected``, trailing blanks of each line aside."""
    assert _trim_lines(sql_output(user, database, query)) == _trim_lines(expected), query


def log_messages(user: User, database: str, count: int = 100) -> list[str]:
    """``Smoketest::logs``: the messages of the last ``count`` module log records."""
    result = user("logs", database, "-n", str(count), "--json")
    assert result.code == 0, result
    return [json.loads(line)["message"] for line in result.out.splitlines() if line.strip()]
