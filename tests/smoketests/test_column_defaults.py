"""Port of upstream's ``crates/smoketests/tests/cluster/column_defaults.rs``: columns added by a migration get
their defaults in existing rows. Upstream runs it with a module in each of its languages; here the module is
Python (``modules/column_defaults_*.py``), under the name of upstream's Rust variant."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import alice, shared_server
from tests.smoketests.support import publish, published, sql, sql_output

__all__ = ["alice", "shared_server"]

pytestmark = pytest.mark.slow

NOT_APPLICABLE = {
    "test_typescript_column_defaults": "a TypeScript module; the Python module of test_rust_column_defaults covers it",
    "test_csharp_column_defaults": "a C# module; the Python module of test_rust_column_defaults covers the subject",
    "test_cpp_column_defaults": "a C++ module; the Python module of test_rust_column_defaults covers the subject",
}

EXPECTED_DEFAULTS = [
    ("bool_value", "true"),
    ("u8_value", "8"),
    ("i8_value", "-8"),
    ("u16_value", "16"),
    ("i16_value", "-16"),
    ("u32_value", "32"),
    ("i32_value", "-32"),
    ("u64_value", "64"),
    ("i64_value", "-64"),
    ("f32_positive_value", "32.5"),
    ("f32_negative_value", "-32.5"),
    ("f64_positive_value", "64.25"),
    ("f64_negative_value", "-64.25"),
    ("string_value", '"default string"'),
]


def test_rust_column_defaults(alice: User) -> None:
    database = published(alice, "column-defaults-initial")
    assert sql(alice, database, "INSERT INTO defaults_test_table (id) VALUES (1)").code == 0
    publish(alice, database, "column-defaults-updated")
    # upstream selects one column per query; one query for all of them spares 13 CLI runs
    columns = ", ".join(column for column, _ in EXPECTED_DEFAULTS)
    output = sql_output(alice, database, f"SELECT {columns} FROM defaults_test_table WHERE id = 1")
    header, _, row = output.splitlines()
    assert [cell.strip() for cell in header.split("|")] == [column for column, _ in EXPECTED_DEFAULTS]
    assert [cell.strip() for cell in row.split("|")] == [value for _, value in EXPECTED_DEFAULTS]
