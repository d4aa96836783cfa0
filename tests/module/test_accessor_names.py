"""Accessor and canonical names (SpacetimeDB's ``#[table(accessor = ..., name = ...)]``, upstream smoketests
cluster/sql.rs ``test_sql_resolves_accessor_and_canonical_names_*``): module code uses the accessor, the database,
clients and SQL the canonical name, and SQL accepts both."""

from __future__ import annotations

import pytest

from spacetimedb.sats import Identity, ProductType
from spacetimedb.sql import Accessors, SqlError, compile_statement, execute, parse
from tests.module.helpers import Db, load_source

SOURCE = """
@table(accessor="accessor_table", name="canonical_table", public=True)
class AccessorRow:
    id: Annotated[u32, PrimaryKey]
    accessor_value1: Annotated[u32, Column(name="accessor_value_1"), Index.btree]

@reducer
def put(ctx: ReducerContext, id: u32, value: u32) -> None:
    ctx.db.accessor_table.insert(AccessorRow(id=id, accessor_value1=value))
    assert ctx.db.accessor_table.accessor_value1.filter(value)
"""

ACCESSORS = Accessors(
    {"accessor_table": "canonical_table"}, {"canonical_table": {"accessor_value1": "accessor_value_1"}}
)


def test_the_module_uses_accessors_and_the_database_canonical_names() -> None:
    db = Db(load_source(SOURCE))
    table = db.loaded.module_def.tables["canonical_table"]
    assert table.accessor_name == "accessor_table"
    assert [(c.name, c.accessor_name) for c in table.columns] == [
        ("id", "id"),
        ("accessor_value_1", "accessor_value1"),
    ]
    row_type = db.loaded.module_def.typespace[table.product_type_ref]
    assert isinstance(row_type, ProductType) and row_type.names == (
        "id",
        "accessor_value_1",
    )  # what clients see
    assert [i.accessor_name for i in table.indexes] == ["id", "accessor_value1"]
    db.call("put", 1, 7)
    assert db.rows("canonical_table") == [(1, 7)]


@pytest.mark.parametrize(
    "source, problem",
    [
        ('@table(accessor="b")\nclass A:\n    x: u32\n\n@table\nclass B:\n    y: u32\n', "`b`"),
        ('@table\nclass A:\n    x: Annotated[u32, Column(name="y")]\n    y: u32\n', "duplicate column `y`"),
        ('@table\nclass A:\n    x: Annotated[u32, Column(name="not a name")]\n', "not a name"),
    ],
)
def test_clashing_or_invalid_names_are_refused(source: str, problem: str) -> None:
    with pytest.raises(Exception, match=problem):
        load_source(source)


def _run(db: Db, text: str, accessors: Accessors = ACCESSORS) -> list[tuple[object, ...]]:
    tx = db.datastore.begin_mut_tx()
    try:
        plan = compile_statement(parse(text), tx, Identity(1), True, accessors=accessors)
        result = execute(plan, tx)
    except BaseException:
        db.datastore.rollback(tx)
        raise
    db.datastore.commit(tx)
    return list(result.rows)


def test_sql_takes_either_name_and_an_update_qualifies_with_the_name_it_used() -> None:
    db = Db(load_source(SOURCE))
    db.call("put", 1, 7)
    for query in (
        "SELECT * FROM accessor_table",
        "SELECT * FROM canonical_table",
        "SELECT accessor_value1 FROM canonical_table WHERE accessor_value_1 = 7",
    ):
        assert _run(db, query) in ([(1, 7)], [(7,)]), query
    _run(db, "UPDATE accessor_table SET accessor_value1 = 9 WHERE accessor_table.id = 1")
    assert db.rows("canonical_table") == [(1, 9)]
    for mixed in (
        "UPDATE accessor_table SET accessor_value_1 = 8 WHERE canonical_table.id = 1",
        "UPDATE canonical_table SET accessor_value_1 = 8 WHERE accessor_table.id = 1",
    ):
        with pytest.raises(SqlError, match="not in scope"):
            _run(db, mixed)
    with pytest.raises(SqlError, match="no such table"):
        _run(db, "SELECT * FROM accessor_table", Accessors())
