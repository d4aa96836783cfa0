import json

import pytest

from spacetimedb import sql

from .fixtures import ALICE, OWNER, query


def test_reply_shape_of_the_sql_route(ds):
    reply = sql.run_sql(ds, "SELECT id, name FROM person WHERE id = 1", OWNER, True)
    assert len(reply) == 1
    (item,) = reply
    assert set(item) == {"schema", "rows", "total_duration_micros", "stats"}
    assert item["schema"] == {
        "elements": [
            {"name": {"some": "id"}, "algebraic_type": {"U64": []}},
            {"name": {"some": "name"}, "algebraic_type": {"String": []}},
        ]
    }
    assert item["rows"] == [[1, "alice"]]
    assert item["stats"] == {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0}
    assert isinstance(item["total_duration_micros"], int) and item["total_duration_micros"] >= 0
    json.dumps(reply)  # plain JSON all the way down


def test_untyped_json_rows_for_special_types(ds):
    (item,) = sql.run_sql(ds, "SELECT ident, opt, color FROM everything", OWNER, True)
    assert item["rows"] == [[["0x" + ALICE.to_hex()], [1, []], [1, []]]]


def test_script_runs_each_statement_in_order(ds):
    reply = sql.run_sql(
        ds,
        "INSERT INTO pet VALUES (2, 'rat', 1); UPDATE pet SET weight = 2 WHERE kind = 'rat'; "
        "SELECT kind, weight FROM pet WHERE kind = 'rat'; DELETE FROM pet WHERE kind = 'rat'; SET row_limit = 9; SHOW row_limit",
        OWNER,
        True,
    )
    assert [r["stats"] for r in reply] == [
        {"rows_inserted": 1, "rows_deleted": 0, "rows_updated": 0},
        {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 1},
        {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0},
        {"rows_inserted": 0, "rows_deleted": 1, "rows_updated": 0},
        {"rows_inserted": 1, "rows_deleted": 0, "rows_updated": 0},
        {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0},
    ]
    assert reply[2]["rows"] == [["rat", 2]]
    assert reply[0]["schema"] == {"elements": []}
    assert reply[5]["rows"] == [[[2, 9]]]


def test_failing_statement_raises_and_earlier_ones_stay_committed(ds):
    with pytest.raises(sql.SqlExecutionError):
        sql.run_sql(
            ds, "DELETE FROM pet WHERE kind = 'cat'; INSERT INTO person VALUES (9, 'alice', 1)", OWNER, True
        )
    assert query(ds, "SELECT * FROM pet WHERE kind = 'cat'") == []
    assert query(ds, "SELECT * FROM person WHERE id = 9") == []
    # the failed transaction was rolled back and released its lock
    assert ds.begin_mut_tx(timeout=1) is not None


def test_non_owner_errors(ds):
    with pytest.raises(sql.SqlPermissionError, match="not authorized to run SQL DML"):
        sql.run_sql(ds, "DELETE FROM pet", ALICE, False)
    with pytest.raises(sql.SqlNameError, match="no such table: `secret`"):
        sql.run_sql(ds, "SELECT * FROM secret", ALICE, False)
    assert sql.run_sql(ds, "SELECT COUNT(*) AS n FROM pet", ALICE, False)[0]["rows"] == [[4]]


def test_empty_script(ds):
    with pytest.raises(sql.SqlUnsupportedError, match="Empty SQL query"):
        sql.run_sql(ds, " ; ", OWNER, True)


def test_commit_goes_through_the_backend(ds):
    committed = []

    class Backend:
        def begin_tx(self):
            return ds.begin_tx()

        def begin_mut_tx(self):
            return ds.begin_mut_tx()

        def commit(self, tx):
            data = ds.commit(tx)
            committed.append(data)
            return data

        def rollback(self, tx):
            ds.rollback(tx)

    sql.run_sql(Backend(), "DELETE FROM pet WHERE owner = 3; SELECT * FROM pet", OWNER, True)
    assert len(committed) == 1
    (changes,) = committed[0].tables
    assert changes.table_name == "pet" and changes.deletes == [(3, "fish", 1)]


def test_relational_db_is_a_backend(tmp_path):
    from spacetimedb.datastore import TableDef
    from spacetimedb.db import RelationalDB
    from spacetimedb.sats import U32

    db = RelationalDB.in_memory()
    with db.mut_tx() as tx:
        tx.create_table(TableDef("t", [("a", U32)]))
    before = db.next_offset
    sql.run_sql(db, "INSERT INTO t VALUES (1), (2)", OWNER, True)
    assert db.next_offset == before + 1
    assert sql.run_sql(db, "SELECT COUNT(*) AS n FROM t", OWNER, True)[0]["rows"] == [[2]]


def test_read_only_statements_are_recognised(ds):
    assert sql.is_read_only(sql.parse("SELECT * FROM t"))
    assert sql.is_read_only(sql.parse("SELECT * FROM t UNION ALL SELECT * FROM t"))
    assert sql.is_read_only(sql.parse("SHOW row_limit"))
    assert not sql.is_read_only(sql.parse("SET row_limit = 1"))
    assert not sql.is_read_only(sql.parse("DELETE FROM t"))
    reply = sql.run_sql(
        ds, "SELECT * FROM pet WHERE owner = 1 UNION SELECT * FROM pet WHERE owner = 3", ALICE, False
    )
    assert len(reply[0]["rows"]) == 3
