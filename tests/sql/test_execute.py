import itertools
import re

import pytest

from spacetimedb import sql
from spacetimedb.datastore import ST_VAR_ID, IndexDef, SequenceDef, TableDef
from spacetimedb.sats import STRING, U8, U32, U64, ProductType, SumValue

from .fixtures import ALICE, ALL_TYPES_ROW, OWNER, PEOPLE, PETS, query, write


def test_select_star_returns_rows_and_schema(ds):
    with ds.begin_tx() as tx:
        result = sql.execute(sql.compile("SELECT * FROM person", tx, OWNER, True), tx)
    assert sorted(result.rows) == PEOPLE
    assert result.schema == ProductType.of(("id", U64), ("name", STRING), ("age", U8))
    assert result.stats == sql.Stats()


def test_projection_and_aliases(ds):
    with ds.begin_tx() as tx:
        result = sql.execute(
            sql.compile("SELECT name AS who, age FROM person WHERE id = 2", tx, OWNER, True), tx
        )
    assert result.rows == [("bob", 25)]
    assert result.schema == ProductType.of(("who", STRING), ("age", U8))


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("age = 25", {2, 4}),
        ("age <> 25", {1, 3, 5}),
        ("age < 30", {2, 4}),
        ("age <= 30", {1, 2, 4}),
        ("age > 35", {5}),
        ("age >= 35", {3, 5}),
        ("age = 25 AND name = 'dave'", {4}),
        ("age = 25 OR name = 'eve'", {2, 4, 5}),
        ("NOT age = 25", {1, 3, 5}),
        ("NOT (age = 25 OR age = 30)", {3, 5}),
        ("(id = 1 OR id = 2) AND (id = 2 OR id = 3)", {2}),
        ("name > 'c'", {3, 4, 5}),
        ("TRUE", {1, 2, 3, 4, 5}),
        ("FALSE", set()),
        ("id = 1 OR age > 100", {1}),
    ],
)
def test_where_semantics(ds, where, expected):
    assert {row[0] for row in query(ds, f"SELECT * FROM person WHERE {where}")} == expected


def test_every_literal_type_matches_its_row(ds):
    conditions = [
        "b = TRUE",
        "i8 = -8",
        "u8 = 8",
        "i16 = -16",
        "u16 = 16",
        "i32 = -32",
        "u32 = 32",
        "i64 = -64",
        "u64 = 64",
        "i128 = -128",
        "u128 = 128",
        f"i256 = -{2**200}",
        f"u256 = {2**200}",
        "f32 = 1.5",
        "f64 = 2.25",
        "s = 'hello'",
        "bytes = 0x0102",
        "ident = 0x01",
        "conn = 0x07",
        "ts = '2025-02-10T15:45:30Z'",
        "ts = '2025-02-10 17:45:30+02:00'",
        "ts > '2025-01-01T00:00:00Z'",
        "uuid = '00000000-0000-0000-0000-000000000102'",
        "opt = NULL",
        "color = 'green'",
        "ident = :sender",
    ]
    for condition in conditions:
        rows = query(ds, f"SELECT * FROM everything WHERE {condition}", ALICE)
        assert rows == [ALL_TYPES_ROW], condition
    assert query(ds, "SELECT * FROM everything WHERE color = 'red'") == []
    assert query(ds, "SELECT * FROM everything WHERE f32 > 1.6") == []


def brute_force_join():
    return sorted((p, q) for p, q in itertools.product(PEOPLE, PETS) if p[0] == q[0])


def test_join_matches_brute_force(ds):
    rows = query(ds, "SELECT person.name, pet.kind FROM person JOIN pet ON person.id = pet.owner")
    assert sorted(rows) == sorted((p[1], q[1]) for p, q in brute_force_join())
    rows = query(ds, "SELECT p.* FROM person AS p JOIN pet AS q ON p.id = q.owner")
    assert sorted(rows) == sorted(p for p, _ in brute_force_join())  # multiplicities kept


def test_join_with_where_on_both_sides(ds):
    rows = query(
        ds,
        "SELECT pet.kind FROM person JOIN pet ON person.id = pet.owner WHERE person.age = 30 AND pet.weight > 3",
    )
    assert rows == [("dog",)]


def test_three_way_and_cross_joins(ds):
    rows = query(
        ds,
        "SELECT a.name, b.kind, c.name AS other FROM person a JOIN pet b ON a.id = b.owner JOIN person c ON c.age = a.age "
        "WHERE c.id <> a.id OR c.id = 1",
    )
    assert sorted(rows) == [("alice", "cat", "alice"), ("alice", "dog", "alice")]
    rows = query(ds, "SELECT a.id, b.id AS b_id FROM person a JOIN person b WHERE a.id < 3 AND b.id > 4")
    assert sorted(rows) == [(1, 5), (2, 5)]
    rows = query(ds, "SELECT a.id, b.id AS b_id FROM person a JOIN person b ON a.age < b.age WHERE b.id = 1")
    assert sorted(rows) == [(2, 1), (4, 1)]


def test_count(ds):
    assert query(ds, "SELECT COUNT(*) AS n FROM person") == [(5,)]
    assert query(ds, "SELECT COUNT(*) AS n FROM person WHERE age = 25") == [(2,)]
    assert query(ds, "SELECT COUNT(*) AS n FROM person LIMIT 2") == [(5,)]
    assert query(ds, "SELECT COUNT(*) FROM person JOIN pet ON person.id = pet.owner") == [(3,)]
    with ds.begin_tx() as tx:
        result = sql.execute(sql.compile("SELECT COUNT(*) FROM person", tx, OWNER, True), tx)
    assert result.schema == ProductType.of(("count", U64))


def test_order_by_limit_offset(ds):
    assert query(ds, "SELECT id FROM person ORDER BY age DESC, name") == [(5,), (3,), (1,), (2,), (4,)]
    assert query(ds, "SELECT id FROM person ORDER BY age, name DESC") == [(4,), (2,), (1,), (3,), (5,)]
    assert query(ds, "SELECT id FROM person ORDER BY id LIMIT 2 OFFSET 1") == [(2,), (3,)]
    assert query(ds, "SELECT id FROM person ORDER BY id OFFSET 3") == [(4,), (5,)]
    assert query(ds, "SELECT name AS n FROM person ORDER BY n LIMIT 1") == [("alice",)]
    assert len(query(ds, "SELECT * FROM person LIMIT 2")) == 2
    assert query(ds, "SELECT * FROM person LIMIT 0") == []
    rows = query(ds, "SELECT pet.kind FROM person JOIN pet ON person.id = pet.owner ORDER BY pet.weight DESC")
    assert rows == [("dog",), ("cat",), ("fish",)]


def test_order_by_option_column(ds):
    tx = ds.begin_mut_tx()
    from spacetimedb.sats import option

    schema = tx.create_table(TableDef("opt", [("id", U32), ("v", option(U32))]))
    for row in [(1, 5), (2, None), (3, 1)]:
        tx.insert(schema.table_id, row)
    ds.commit(tx)
    assert query(ds, "SELECT id FROM opt ORDER BY v") == [(3,), (1,), (2,)]


def test_union_and_union_all(ds):
    rows = query(ds, "SELECT * FROM person WHERE age = 25 UNION SELECT * FROM person WHERE id = 2 OR id = 3")
    assert sorted(r[0] for r in rows) == [2, 3, 4]
    rows = query(
        ds, "SELECT * FROM person WHERE age = 25 UNION ALL SELECT * FROM person WHERE id = 2 OR id = 3"
    )
    assert sorted(r[0] for r in rows) == [2, 2, 3, 4]
    rows = query(
        ds,
        "SELECT person.* FROM person JOIN pet ON person.id = pet.owner UNION ALL SELECT * FROM person WHERE id = 5",
    )
    assert sorted(r[0] for r in rows) == [1, 1, 3, 5]
    assert query(
        ds, "SELECT * FROM person WHERE id = 1 UNION SELECT p.* FROM person AS p WHERE p.id = 1"
    ) == [PEOPLE[0]]


def test_union_restrictions(ds):
    for text, message in [
        ("SELECT id FROM person UNION SELECT id FROM person", "must select whole rows"),
        (
            "SELECT * FROM person UNION ALL SELECT * FROM pet",
            "must select whole rows (`*` or `t.*`) of one table",
        ),
        ("SELECT * FROM person UNION SELECT * FROM pet", "UNION of joins or of different tables"),
        ("SELECT * FROM person UNION SELECT * FROM person LIMIT 1", "ORDER BY, LIMIT and OFFSET with UNION"),
    ]:
        with pytest.raises(sql.SqlUnsupportedError, match=re.escape(message)):
            query(ds, text)


# ---- DML -------------------------------------------------------------------------------------------------


def test_insert_fills_auto_inc_with_zero_and_when_omitted(ds):
    result = write(ds, "INSERT INTO person VALUES (0, 'frank', 50), (0, 'gina', 51)")
    assert result.stats.rows_inserted == 2
    assert result.schema == ProductType(())
    rows = query(ds, "SELECT id, name FROM person WHERE age >= 50 ORDER BY age")
    assert [name for _, name in rows] == ["frank", "gina"]
    assert all(id_ > 5 for id_, _ in rows) and rows[0][0] != rows[1][0]
    write(ds, "INSERT INTO person (age, name) VALUES (60, 'hal')")
    (row,) = query(ds, "SELECT * FROM person WHERE name = 'hal'")
    assert row[0] > rows[1][0] and row[2] == 60


def test_insert_columns_in_any_order(ds):
    write(ds, "INSERT INTO pet (weight, kind, owner) VALUES (7, 'owl', 2)")
    assert query(ds, "SELECT * FROM pet WHERE kind = 'owl'") == [(2, "owl", 7)]


def test_insert_unique_violation_is_an_error_and_changes_nothing(ds):
    with pytest.raises(sql.SqlExecutionError, match="violates unique constraint"):
        write(ds, "INSERT INTO person VALUES (77, 'zed', 1), (78, 'alice', 2)")
    assert query(ds, "SELECT * FROM person WHERE id = 77") == []


def test_insert_existing_row_is_a_no_op(ds):
    assert write(ds, "INSERT INTO pet VALUES (1, 'cat', 3)").stats.rows_inserted == 0
    assert len(query(ds, "SELECT * FROM pet")) == len(PETS)


def test_update(ds):
    result = write(ds, "UPDATE person SET age = 26, name = 'robert' WHERE id = 2")
    assert result.stats.rows_updated == 1
    assert query(ds, "SELECT * FROM person WHERE id = 2") == [(2, "robert", 26)]
    assert write(ds, "UPDATE person SET age = 1 WHERE age = 25").stats.rows_updated == 1
    assert write(ds, "UPDATE pet SET weight = 0").stats.rows_updated == len(PETS)
    assert {row[2] for row in query(ds, "SELECT * FROM pet")} == {0}


def test_update_unique_violation(ds):
    with pytest.raises(sql.SqlExecutionError, match="violates unique constraint"):
        write(ds, "UPDATE person SET name = 'bob' WHERE id = 1")
    assert query(ds, "SELECT name FROM person WHERE id = 1") == [("alice",)]


def test_update_of_primary_key(ds):
    write(ds, "UPDATE person SET id = 100 WHERE id = 1")
    assert query(ds, "SELECT * FROM person WHERE name = 'alice'") == [(100, "alice", 30)]
    # 0 in an auto-increment column asks the sequence, as on INSERT
    write(ds, "UPDATE person SET id = 0 WHERE id = 2 OR id = 3")
    assert sorted(row[0] for row in query(ds, "SELECT * FROM person")) == [4, 5, 6, 7, 100]


def test_delete(ds):
    assert write(ds, "DELETE FROM pet WHERE owner = 1").stats.rows_deleted == 2
    assert sorted(query(ds, "SELECT kind FROM pet")) == [("fish",), ("ghost",)]
    assert write(ds, "DELETE FROM pet WHERE pet.kind = 'nope'").stats.rows_deleted == 0
    assert write(ds, "DELETE FROM pet").stats.rows_deleted == 2


def test_dml_with_sender(ds):
    write(ds, "DELETE FROM secret WHERE owner = :sender", caller=ALICE)
    assert query(ds, "SELECT * FROM secret") == []


def test_dml_needs_a_mutable_transaction(ds):
    with ds.begin_tx() as tx:
        plan = sql.compile("DELETE FROM pet", tx, OWNER, True)
        with pytest.raises(sql.SqlExecutionError, match="mutable transaction"):
            sql.execute(plan, tx)


# ---- variables and the row limit -------------------------------------------------------------------------


def test_set_and_show_row_limit(ds):
    assert query(ds, "SHOW row_limit") == []
    assert write(ds, "SET row_limit = 3").stats.rows_inserted == 1
    assert query(ds, "SHOW row_limit") == [(SumValue(2, 3),)]
    write(ds, "SET row_limit TO 4")
    assert query(ds, "SHOW row_limit") == [(SumValue(2, 4),)]
    with ds.begin_tx() as tx:
        assert sql.row_limit(tx) == 4
        assert [r for r in tx.scan(ST_VAR_ID)] == [("row_limit", SumValue(2, 4))]


def test_row_limit_applies_to_non_owners_only(ds):
    write(ds, "SET row_limit = 3")
    with pytest.raises(sql.SqlLimitError) as info:
        query(ds, "SELECT * FROM person", ALICE, owner=False)
    assert str(info.value) == "Estimated cardinality (5 rows) exceeds limit (3 rows)"
    assert len(query(ds, "SELECT * FROM person", ALICE, owner=True)) == 5
    assert query(ds, "SELECT * FROM person WHERE id = 1", ALICE, owner=False) == [PEOPLE[0]]
    assert len(query(ds, "SELECT * FROM person WHERE age = 25", ALICE, owner=False)) == 2
    assert len(query(ds, "SELECT * FROM person LIMIT 2", ALICE, owner=False)) == 2
    with pytest.raises(sql.SqlLimitError):
        query(ds, "SELECT person.* FROM person JOIN pet ON person.id = pet.owner", ALICE, owner=False)
    assert query(ds, "SHOW row_limit", ALICE, owner=False) == [(SumValue(2, 3),)]


def test_sequences_survive_sql_inserts_in_separate_transactions(ds):
    tx = ds.begin_mut_tx()
    schema = tx.create_table(
        TableDef(
            "counter",
            [("id", U64), ("v", U32)],
            indexes=[IndexDef((0,))],
            unique_constraints=[((0,), None)],
            sequences=[SequenceDef(0)],
            primary_key=0,
        )
    )
    ds.commit(tx)
    for v in range(3):
        write(ds, f"INSERT INTO counter (v) VALUES ({v})")
    assert len({row[0] for row in query(ds, "SELECT * FROM counter")}) == 3
    assert schema.name == "counter"
