"""Helpers of the server-side ports (sql, migrations, rls, ...): upstream's ``Smoketest::sql`` / ``assert_sql`` /
``logs``, and a database owner shared by the tests of one file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import Result, User
from tests.conftest import ServerProcess

MODULES = Path(__file__).resolve().parent / "modules"


def module_path(name: str) -> Path:
    """A port module of tests/smoketests/modules: upstream's ``crates/smoketests/modules/<name>``, in Python."""
    return MODULES / f"{name.replace('-', '_')}.py"


def fresh_name() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def shared_owner(factory: pytest.TempPathFactory, server: ServerProcess) -> User:
    """A user whose config outlives one test, for databases shared by the tests of a file."""
    return User(factory.mktemp("owner") / "config", server.url)


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


class Subscription:
    """``Smoketest::subscribe(...).background()``: ``spacetime subscribe`` running, already subscribed (its initial
    update arrived), its later updates collected by ``collect``. The process ends itself within 90 s (``-t``)."""

    def __init__(self, user: User, database: str, queries: list[str], updates: int | None = None) -> None:
        count = ["-n", str(updates)] if updates is not None else []
        self.process = user.start(
            "subscribe", database, *queries, *count, "-t", "90", "--print-initial-update"
        )
        assert self.process.stdout is not None
        initial = self.process.stdout.readline()  # the initial update: subscribed
        assert initial, self.process.communicate(timeout=30)

    def collect(self, timeout: float = 100) -> list[dict[str, object]]:
        """Wait for the process to end (``-n`` updates arrived, or the server closed the connection); it must exit
        cleanly. Returns the updates after the initial one."""
        out, err = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, (self.process.returncode, out, err)
        return [json.loads(line) for line in out.splitlines() if line.strip()]
