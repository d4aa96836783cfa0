"""Port of upstream's ``crates/smoketests/tests/cluster/sql.rs``: how ``spacetime sql`` renders each type, and how
SQL resolves the accessor and canonical names of tables, views and columns. Module: ``modules/sql_format.py``."""

from __future__ import annotations

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.conftest import shared_server
from tests.smoketests.support import assert_sql, fresh_name, module_path, owner, sql

__all__ = ["owner", "shared_server"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def formats_db(owner: User) -> str:
    """The ``sql-format`` database after its ``test`` reducer ran (read-only for the tests that use it)."""
    name = fresh_name()
    owner.publish(name, module_path("sql-format"))
    assert owner("call", name, "test").code == 0
    return name


def _publish_names(owner: User) -> str:
    name = fresh_name()
    owner.publish(name, module_path("sql-format-names"))
    return name


@pytest.fixture(scope="module")
def shared_names_db(owner: User) -> str:
    """The names part of ``sql-format``, read-only for the tests that use it."""
    return _publish_names(owner)


@pytest.fixture
def names_db(owner: User) -> str:
    """A fresh one, for the tests that change ``canonical_table``."""
    return _publish_names(owner)


def test_sql_format(owner: User, formats_db: str) -> None:
    """Upstream's ``test_sql_format``, except ``t_enums.bool_result``: Python modules have no ``Result`` type. The
    f64 shows as upstream's CLI prints it (``-3454353.345389043``, see ``read_f64_as_upstream_cli``)."""
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_ints",
        """
 i_8 | i_16  | i_32   | i_64     | i_128         | i_256
-----+-------+--------+----------+---------------+---------------
 -25 | -3224 | -23443 | -2344353 | -234434897853 | -234434897853""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_ints_tuple",
        """
 tuple
---------------------------------------------------------------------------------------------------------
 (i_8 = -25, i_16 = -3224, i_32 = -23443, i_64 = -2344353, i_128 = -234434897853, i_256 = -234434897853)""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_uints",
        """
 u_8 | u_16 | u_32  | u_64     | u_128         | u_256
-----+------+-------+----------+---------------+---------------
 105 | 1050 | 83892 | 48937498 | 4378528978889 | 4378528978889""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_uints_tuple",
        """
 tuple
-------------------------------------------------------------------------------------------------------
 (u_8 = 105, u_16 = 1050, u_32 = 83892, u_64 = 48937498, u_128 = 4378528978889, u_256 = 4378528978889)""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_others",
        """
 bool | f_32      | f_64               | str                   | bytes            | identity                                                           | connection_id                      | timestamp                 | duration  | uuid
------+-----------+--------------------+-----------------------+------------------+--------------------------------------------------------------------+------------------------------------+---------------------------+-----------+----------------------------------------
 true | 594806.56 | -3454353.345389043 | "This is spacetimedb" | 0x01020304050607 | 0x0000000000000000000000000000000000000000000000000000000000000001 | 0x00000000000000000000000000000000 | 1970-01-01T00:00:00+00:00 | +0.000000 | "00000000-0000-0000-0000-000000000000\"""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_others_tuple",
        """
 tuple
------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------
 (bool = true, f_32 = 594806.56, f_64 = -3454353.345389043, str = "This is spacetimedb", bytes = 0x01020304050607, identity = 0x0000000000000000000000000000000000000000000000000000000000000001, connection_id = 0x00000000000000000000000000000000, timestamp = 1970-01-01T00:00:00+00:00, duration = +0.000000, uuid = "00000000-0000-0000-0000-000000000000")""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_enums",
        """
 bool_opt      | action
---------------+---------------
 (some = true) | (active = ())""",
    )
    assert_sql(
        owner,
        formats_db,
        "SELECT * FROM t_enums_tuple",
        """
 tuple
----------------------------------------------------
 (bool_opt = (some = true), action = (active = ()))""",
    )


CANONICAL_ROW = """
 id | accessor_value_1
----+------------------
 1  | 7"""


def test_sql_resolves_accessor_and_canonical_names_for_table(owner: User, shared_names_db: str) -> None:
    """A table is found by its accessor (``accessor_table``) and its canonical name (``canonical_table``); the
    columns show their canonical names."""
    assert_sql(owner, shared_names_db, "SELECT * FROM accessor_table", CANONICAL_ROW)
    assert_sql(owner, shared_names_db, "SELECT * FROM canonical_table", CANONICAL_ROW)


def test_sql_resolves_accessor_and_canonical_names_for_view(owner: User, shared_names_db: str) -> None:
    """The same for a view: its function's name and its ``name=``."""
    assert_sql(owner, shared_names_db, "SELECT * FROM accessor_filtered", CANONICAL_ROW)
    assert_sql(owner, shared_names_db, "SELECT * FROM canonical_filtered", CANONICAL_ROW)


def test_sql_resolves_accessor_and_canonical_names_for_column(owner: User, shared_names_db: str) -> None:
    """A column is found by either name, and the header shows the name the query used."""
    assert_sql(
        owner,
        shared_names_db,
        "SELECT accessor_value_1 FROM accessor_table",
        """
 accessor_value_1
------------------
 7""",
    )
    assert_sql(
        owner,
        shared_names_db,
        "SELECT accessor_value1 FROM accessor_table",
        """
 accessor_value1
-----------------
 7""",
    )


def test_query_builder_resolves_accessor_and_canonical_names(owner: User, shared_names_db: str) -> None:
    """Upstream's view is built with its Rust query builder; a Python view is a function returning rows. What the
    test asserts stays: the view, by its accessor, has the canonical column names."""
    assert_sql(owner, shared_names_db, "SELECT * FROM accessor_filtered", CANONICAL_ROW)


ONE_VALUE = """
 accessor_value_1
------------------
 {}"""


def test_sql_dml_uses_target_name_as_implicit_alias(owner: User, names_db: str) -> None:
    """An UPDATE's filter may qualify columns with the name the UPDATE used for its table."""
    for update, value, check in (
        ("UPDATE accessor_table SET accessor_value_1 = 8 WHERE id = 1", 8, "canonical_table"),
        ("UPDATE accessor_table SET accessor_value_1 = 9 WHERE accessor_table.id = 1", 9, "accessor_table"),
        (
            "UPDATE canonical_table SET accessor_value_1 = 10 WHERE canonical_table.id = 1",
            10,
            "accessor_table",
        ),
    ):
        assert sql(owner, names_db, update).code == 0, update
        assert_sql(
            owner, names_db, f"SELECT accessor_value_1 FROM {check} WHERE id = 1", ONE_VALUE.format(value)
        )
    assert sql(owner, names_db, "DELETE FROM accessor_table WHERE id = 1").code == 0
    assert_sql(
        owner,
        names_db,
        "SELECT * FROM canonical_table",
        """
 id | accessor_value_1
----+------------------""",
    )


def test_sql_dml_rejects_mixed_target_and_qualifier_names(owner: User, names_db: str) -> None:
    """Qualifying a filter's column with the table's other name is an error, in either direction."""
    for update in (
        "UPDATE accessor_table SET accessor_value_1 = 8 WHERE canonical_table.id = 1",
        "UPDATE canonical_table SET accessor_value_1 = 8 WHERE accessor_table.id = 1",
    ):
        assert sql(owner, names_db, update).code != 0, update
    assert_sql(owner, names_db, "SELECT * FROM canonical_table", CANONICAL_ROW)
