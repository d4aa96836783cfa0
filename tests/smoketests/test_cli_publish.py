"""Port of upstream's cluster/cli/publish.rs: republishing, ``--delete-data[=on-conflict]``, ``--break-clients``
and ``--yes[=VALUE]`` on updates that keep, break or cannot keep the schema (crates/cli/src/subcommands/publish.rs).

Upstream's "module-test" with its cargo features becomes a Python module in three versions: as published, with a
column added (``test-add-column``: an automatic migration that disconnects clients) and with a table removed
(``test-remove-table``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import init_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE = {
    "cli_can_publish_spacetimedb_on_disk": "publishes upstream's Rust chat template from its repository (a Rust "
    "module); republishing one module to the same name is what every other test here does first",
}

MODULE_TEST = """
    from typing import Annotated

    from spacetimedb import PrimaryKey, ReducerContext, i32, reducer, table, u64


    @table(public=True)
    class Person:
        id: Annotated[u64, PrimaryKey]
        name: str
        age: i32{extra_column}

{extra_table}
    @reducer
    def add(ctx: ReducerContext, id: u64, name: str, age: i32) -> None:
        ctx.db.person.insert(Person(id=id, name=name, age=age))
"""

EXTRA_TABLE = """
    @table(public=True)
    class Pet:
        name: Annotated[str, PrimaryKey]

"""

VERSIONS = {
    "as-published": {"extra_column": "", "extra_table": EXTRA_TABLE},
    "test-add-column": {"extra_column": "\n        nickname: str = ''", "extra_table": EXTRA_TABLE},
    "test-remove-table": {"extra_column": "", "extra_table": ""},
}


@pytest.fixture
def module_test(python_module: Callable[[str], Path]) -> Callable[[str], Path]:
    def version(name: str) -> Path:
        return python_module(MODULE_TEST.format(**VERSIONS[name]))

    return version


def migration_test(
    alice: User, db_name: str, module_test: Callable[[str], Path], version: str, args: tuple[str, ...]
) -> bool:
    """Publish the module, add a row, republish ``version`` with ``args``: whether the republish succeeded.
    The row tells whether the data was kept; upstream's helper checks only the exit status."""
    alice.publish(db_name, module_test("as-published"))
    assert alice("call", db_name, "add", "1", "Alice", "30").code == 0
    result = alice("publish", db_name, "-p", str(module_test(version)), *args)
    return result.code == 0


def people(alice: User, db_name: str) -> list[list[object]]:
    result = alice("sql", db_name, "SELECT id FROM person", "--json")
    assert result.code == 0, result
    return list(json.loads(result.out)[0]["rows"])


def test_cli_can_publish_no_conflict_does_not_delete_data(alice: User, db_name: str, module_test):
    # deleting data needs --yes, so without it no deletion is attempted
    assert migration_test(alice, db_name, module_test, "as-published", ("--delete-data=on-conflict",))
    assert people(alice, db_name) == [[1]]


def test_cli_can_publish_no_conflict_with_delete_data_flag(alice: User, db_name: str, module_test):
    assert migration_test(alice, db_name, module_test, "as-published", ("--delete-data", "--yes"))
    assert people(alice, db_name) == []


def test_cli_can_publish_no_conflict_without_delete_data_flag(alice: User, db_name: str, module_test):
    assert migration_test(alice, db_name, module_test, "as-published", ())
    assert people(alice, db_name) == [[1]]


def test_cli_can_publish_with_automigration_change(alice: User, db_name: str, module_test):
    assert migration_test(alice, db_name, module_test, "test-add-column", ("--break-clients",))
    assert people(alice, db_name) == [[1]]


def test_cli_cannot_publish_automigration_change_without_yes_break_clients(
    alice: User, db_name: str, module_test
):
    assert not migration_test(alice, db_name, module_test, "test-add-column", ())


def test_cli_can_publish_automigration_change_with_on_conflict_and_yes_break_clients(
    alice: User, db_name: str, module_test
):
    args = ("--delete-data=on-conflict", "--break-clients")
    assert migration_test(alice, db_name, module_test, "test-add-column", args)
    assert people(alice, db_name) == [[1]]


def test_cli_cannot_publish_automigration_change_with_on_conflict_without_yes_break_clients(
    alice: User, db_name: str, module_test
):
    assert not migration_test(alice, db_name, module_test, "test-add-column", ("--delete-data=on-conflict",))


def test_cli_can_publish_automigration_change_with_delete_data_always_without_yes_break_clients(
    alice: User, db_name: str, module_test
):
    assert migration_test(alice, db_name, module_test, "test-add-column", ("--delete-data", "--yes"))
    assert people(alice, db_name) == []


def test_cli_can_publish_automigration_change_with_delete_data_always_and_yes_break_clients(
    alice: User, db_name: str, module_test
):
    args = ("--delete-data", "--yes", "--break-clients")
    assert migration_test(alice, db_name, module_test, "test-add-column", args)


def test_cli_cannot_publish_breaking_change_without_flag(alice: User, db_name: str, module_test):
    assert not migration_test(alice, db_name, module_test, "test-remove-table", ())


def test_cli_can_publish_breaking_change_with_delete_data_flag(alice: User, db_name: str, module_test):
    assert migration_test(alice, db_name, module_test, "test-remove-table", ("--delete-data", "--yes"))
    assert people(alice, db_name) == []


def test_cli_can_publish_breaking_change_with_on_conflict_flag(alice: User, db_name: str, module_test):
    args = ("--delete-data=on-conflict", "--yes")
    assert migration_test(alice, db_name, module_test, "test-remove-table", args)


def test_cli_publish_with_config_but_no_match_uses_cli_args(alice: User, db_name: str, tmp_path: Path):
    """A spacetime.json naming another database does not override the name on the command line (this CLI reads
    no spacetime.json at all: docs/cli.md)."""
    module_dir = init_project(alice, tmp_path / "project")
    (module_dir / "spacetime.json").write_text('{\n  "database": "config-db-name"\n}')
    result = alice("publish", db_name, "--module-path", str(module_dir))
    assert result.code == 0, result
    assert alice("logs", db_name).code == 0
    assert alice("logs", "config-db-name").code != 0
