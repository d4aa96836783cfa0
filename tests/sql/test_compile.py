import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetimedb import sql
from spacetimedb.datastore import ST_ROW_LEVEL_SECURITY_ID, IndexDef, TableDef
from spacetimedb.sats import STRING, U32, U64

from .fixtures import ALICE, BOB, OWNER, explain, query


def compile_error(ds, text, caller=OWNER, owner=True):
    with ds.begin_tx() as tx, pytest.raises(sql.SqlError) as info:
        sql.compile(text, tx, caller, owner)
    return info.value


# ---- names and visibility --------------------------------------------------------------------------------


def test_unknown_table_message(ds):
    err = compile_error(ds, "SELECT * FROM nope")
    assert isinstance(err, sql.SqlNameError)
    assert str(err) == "no such table: `nope`. If the table exists, it may be marked private."


def test_a_misspelt_table_gets_a_did_you_mean(ds):
    err = compile_error(ds, "SELECT * FROM persn")
    assert str(err) == (
        "no such table: `persn`. If the table exists, it may be marked private. Did you mean `person`?"
    )


def test_did_you_mean_never_names_a_private_table_to_a_non_owner(ds):
    assert "Did you mean `secret`" in str(compile_error(ds, "SELECT * FROM secrt"))
    err = compile_error(ds, "SELECT * FROM secrt", ALICE, owner=False)
    assert "secret`" not in str(err)


def test_private_tables_are_invisible_to_non_owners(ds):
    assert query(ds, "SELECT * FROM secret") == [(1, ALICE)]
    err = compile_error(ds, "SELECT * FROM secret", ALICE, owner=False)
    assert "no such table: `secret`" in str(err)
    err = compile_error(ds, "SELECT person.* FROM person JOIN secret ON person.id = secret.id", ALICE, False)
    assert "no such table: `secret`" in str(err)


def test_column_errors(ds):
    assert (
        str(compile_error(ds, "SELECT * FROM person WHERE nope = 1"))
        == "`person` does not have a field `nope`"
    )
    assert (
        str(compile_error(ds, "SELECT * FROM person AS p WHERE person.id = 1")) == "`person` is not in scope"
    )
    err = compile_error(ds, "SELECT person.* FROM person JOIN pet ON person.id = pet.owner WHERE kind2 = 'x'")
    assert "`kind2` is not a column of any table" in str(err)


def test_unqualified_columns_resolve_in_joins_when_unambiguous(ds):
    rows = query(ds, "SELECT name, kind FROM person JOIN pet ON id = owner WHERE weight > 2")
    assert sorted(rows) == [("alice", "cat"), ("alice", "dog")]
    tx = ds.begin_mut_tx()
    tx.create_table(TableDef("other", [("id", U64), ("name", STRING)]))
    ds.commit(tx)
    err = compile_error(ds, "SELECT person.* FROM person JOIN other ON person.id = other.id WHERE name = 'x'")
    assert "Column `name` is ambiguous" in str(err)


def test_duplicate_aliases_and_output_names(ds):
    assert (
        str(compile_error(ds, "SELECT a.* FROM person a JOIN pet a ON a.id = a.owner"))
        == "Duplicate name `a`"
    )
    assert "Duplicate name `x`" in str(compile_error(ds, "SELECT id AS x, name AS x FROM person"))


def test_star_on_join_is_rejected(ds):
    err = compile_error(ds, "SELECT * FROM person JOIN pet ON person.id = pet.owner")
    assert "SELECT * is not supported for joins" in str(err)


# ---- types -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("u8 = -1", "The literal expression `-1` cannot be parsed as type `U8` (column `everything.u8`)"),
        ("u8 = 256", "cannot be parsed as type `U8`"),
        ("u8 = 1e3", "cannot be parsed as type `U8`"),
        ("u32 = 0.1", "The literal expression `0.1` cannot be parsed as type `U32`"),
        ("i32 = 1e-3", "cannot be parsed as type `I32`"),
        ("u32 = 'x'", "The literal expression `'x'` cannot be parsed as type `U32`"),
        ("b = 1", "cannot be parsed as type `Bool`"),
        ("b = 'true'", "cannot be parsed as type `Bool`"),
        ("ident = 'zz'", "cannot be parsed as type `Identity`"),
        ("ident = 0x" + "1" * 65, "cannot be parsed as type `Identity`"),
        ("ts = 'yesterday'", "cannot be parsed as type `Timestamp`"),
        ("ts = 5", "cannot be parsed as type `Timestamp`"),
        ("uuid = 'not-a-uuid'", "cannot be parsed as type `Uuid`"),
        ("opt = 'x'", "cannot be parsed as type `Option<I32>`"),
        ("color = 'purple'", "cannot be parsed as type"),
        ("u64 = 1e999999999", "cannot be parsed as type `U64`"),
    ],
)
def test_literal_type_errors_name_column_and_type(ds, where, message):
    err = compile_error(ds, f"SELECT * FROM everything WHERE {where}")
    assert isinstance(err, sql.SqlTypeError)
    assert message in str(err)


@pytest.mark.parametrize(
    "where",
    [
        "i32 = -1",
        "u32 = +1",
        "u32 = 1e3",
        "u32 = 1E3",
        "f32 = 1e3",
        "f32 = 1e-3",
        "f32 = .1",
        "f32 = 1e40",
        "u256 = 1e40",
        "i256 = -57896044618658097711785492504343953926634992332820282019728792003956564819968",
        "u128 = 340282366920938463463374607431768211455",
        "ts = '2025-02-10T15:45:30Z'",
        "ts = '2025-02-10T15:45:30.123Z'",
        "ts = '2025-02-10T15:45:30.123456789Z'",
        "ts = '2025-02-10 15:45:30+02:00'",
        "bytes = 0x0102",
        "bytes = X'0102'",
        "ident = 0x01",
        "ident = '0000000000000000000000000000000000000000000000000000000000000001'",
        "conn = 0x07",
        "uuid = '00000000-0000-0000-0000-000000000102'",
        "s = 'x' AND s = 5",
        "b = TRUE",
        "b",
        "NOT b",
        "opt = 5",
        "color = 'green'",
        "TRUE",
    ],
)
def test_valid_literals(ds, where):
    with ds.begin_tx() as tx:
        sql.compile(f"SELECT * FROM everything WHERE {where}", tx, OWNER, True)


def test_i256_out_of_range(ds):
    too_big = str(2**255)
    assert "cannot be parsed as type `I256`" in str(
        compile_error(ds, f"SELECT * FROM everything WHERE i256 = {too_big}")
    )


def test_column_comparisons_need_equal_types(ds):
    err = compile_error(ds, "SELECT * FROM everything WHERE u8 = u16")
    assert str(err) == "Cannot compare `everything.u8` of type `U8` with `everything.u16` of type `U16`"
    query(ds, "SELECT * FROM everything WHERE u8 < u8")


def test_operators_and_types(ds):
    assert "Invalid binary operator `<` for type `Option<I32>`" in str(
        compile_error(ds, "SELECT * FROM everything WHERE opt < 3")
    )
    assert "cannot be used as a condition" in str(compile_error(ds, "SELECT * FROM everything WHERE u8"))
    assert "Cannot resolve type for literal expression `1 = 1`" in str(
        compile_error(ds, "SELECT * FROM everything WHERE 1 = 1")
    )
    assert "Expected a condition, found `5`" in str(compile_error(ds, "SELECT * FROM everything WHERE 5"))


def test_sender_parameter_types(ds):
    assert "The parameter `:sender` has type `Identity`" in str(
        compile_error(ds, "SELECT * FROM person WHERE id = :sender")
    )
    assert "Unknown parameter `:caller`" in str(
        compile_error(ds, "SELECT * FROM everything WHERE ident = :caller")
    )
    assert len(query(ds, "SELECT * FROM everything WHERE ident = :sender", ALICE)) == 1
    assert query(ds, "SELECT * FROM everything WHERE ident = :sender", BOB) == []


def test_limit_must_be_u64(ds):
    assert "cannot be parsed as type `U64` (LIMIT)" in str(
        compile_error(ds, "SELECT * FROM person LIMIT 1.5")
    )


# ---- index selection -------------------------------------------------------------------------------------


def test_equality_uses_unique_index(ds):
    assert explain(ds, "SELECT * FROM person WHERE id = 3") == [
        "IndexSeek person using person_id_idx_btree key=3"
    ]
    assert explain(ds, "SELECT * FROM person WHERE 3 = id") == [
        "IndexSeek person using person_id_idx_btree key=3"
    ]


def test_unique_seek_preferred_over_others_and_residual_kept(ds):
    lines = explain(ds, "SELECT * FROM person WHERE age = 25 AND name = 'bob'")
    assert lines == ["IndexSeek person using person_name_idx_btree key='bob' filter person.age = 25"]


def test_range_predicates_use_index_ranges(ds):
    assert explain(ds, "SELECT * FROM person WHERE age > 25 AND age <= 35") == [
        "IndexRange person using person_age_idx_btree (25, 35]"
    ]
    assert explain(ds, "SELECT * FROM person WHERE age >= 30") == [
        "IndexRange person using person_age_idx_btree [30, -inf]"
    ]
    assert sorted(query(ds, "SELECT name FROM person WHERE age > 25 AND age <= 35")) == [
        ("alice",),
        ("carol",),
    ]
    assert query(ds, "SELECT * FROM person WHERE age > 30 AND age < 30") == []


def test_or_of_equalities_seeks_each_key(ds):
    assert explain(ds, "SELECT * FROM person WHERE id = 1 OR id = 4") == [
        "IndexMultiSeek person using person_id_idx_btree keys=[1, 4]"
    ]


def test_unindexed_predicates_scan(ds):
    assert explain(ds, "SELECT * FROM pet WHERE kind = 'cat'") == ["Scan pet filter pet.kind = 'cat'"]
    assert explain(ds, "SELECT * FROM person WHERE id <> 3") == ["Scan person filter person.id <> 3"]


def test_multi_column_index_seek_and_prefix(ds):
    tx = ds.begin_mut_tx()
    schema = tx.create_table(
        TableDef("grid", [("x", U32), ("y", U32), ("v", STRING)], indexes=[IndexDef((0, 1))])
    )
    for x in range(3):
        for y in range(3):
            tx.insert(schema.table_id, (x, y, f"{x},{y}"))
    ds.commit(tx)
    assert explain(ds, "SELECT * FROM grid WHERE y = 2 AND x = 1") == [
        "IndexSeek grid using grid_x_y_idx_btree key=(1, 2)"
    ]
    assert explain(ds, "SELECT * FROM grid WHERE x = 1") == [
        "IndexPrefix grid using grid_x_y_idx_btree prefix=(1,)"
    ]
    assert explain(ds, "SELECT * FROM grid WHERE x = 1 AND y >= 1") == [
        "IndexRange grid using grid_x_y_idx_btree prefix=(1,) [1, -inf]"
    ]
    assert sorted(query(ds, "SELECT v FROM grid WHERE x = 1 AND y >= 1")) == [("1,1",), ("1,2",)]
    assert sorted(query(ds, "SELECT v FROM grid WHERE x = 2")) == [("2,0",), ("2,1",), ("2,2",)]


def test_join_probes_index_on_join_key(ds):
    lines = explain(ds, "SELECT pet.* FROM person JOIN pet ON person.id = pet.owner WHERE person.id = 1")
    assert lines == [
        "IndexSeek person using person_id_idx_btree key=1",
        "IndexJoin pet using pet_owner_idx_btree on person.id",
    ]
    lines = explain(
        ds, "SELECT person.* FROM pet JOIN person ON person.id = pet.owner WHERE pet.kind = 'cat'"
    )
    assert lines == [
        "Scan pet filter pet.kind = 'cat'",
        "IndexJoin person using person_id_idx_btree on pet.owner",
    ]


def test_join_without_index_hashes(ds):
    lines = explain(ds, "SELECT pet.* FROM pet JOIN everything ON pet.owner = everything.u64")
    assert lines == ["Scan pet", "HashJoin everything on pet.owner build=(Scan everything)"]
    lines = explain(ds, "SELECT pet.* FROM pet JOIN everything ON pet.weight = everything.u32")
    assert lines[1] == "IndexJoin everything using everything_u32_idx_btree on pet.weight"


# ---- row-level security ----------------------------------------------------------------------------------


def add_rule(ds, table, rule_sql):
    tx = ds.begin_mut_tx()
    tx.insert(ST_ROW_LEVEL_SECURITY_ID, (tx.table_id(table), rule_sql))
    ds.commit(tx)


def test_rls_filters_non_owners_and_owner_bypasses(ds):
    add_rule(ds, "everything", "SELECT * FROM everything WHERE ident = :sender")
    assert len(query(ds, "SELECT * FROM everything", ALICE, owner=False)) == 1
    assert query(ds, "SELECT * FROM everything", BOB, owner=False) == []
    assert len(query(ds, "SELECT * FROM everything", BOB, owner=True)) == 1
    assert query(ds, "SELECT COUNT(*) AS n FROM everything", BOB, owner=False) == [(0,)]


def test_rls_rules_are_a_union_and_may_join(ds):
    add_rule(ds, "pet", "SELECT * FROM pet WHERE weight > 50")
    add_rule(
        ds, "pet", "SELECT pet.* FROM pet JOIN person ON pet.owner = person.id WHERE person.name = 'alice'"
    )
    rows = query(ds, "SELECT * FROM pet", BOB, owner=False)
    assert sorted(rows) == [(1, "cat", 3), (1, "dog", 5), (9, "ghost", 100)]
    rows = query(ds, "SELECT kind FROM pet WHERE weight < 4", BOB, owner=False)
    assert rows == [("cat",)]
    with ds.begin_tx() as tx:
        plan = sql.compile("SELECT * FROM pet", tx, BOB, False)
        assert len(plan.fragments) == 2


def test_rls_applies_inside_joins(ds):
    add_rule(ds, "person", "SELECT * FROM person WHERE age < 30")
    rows = query(ds, "SELECT pet.* FROM pet JOIN person ON pet.owner = person.id", BOB, owner=False)
    assert rows == []
    rows = query(ds, "SELECT pet.* FROM pet JOIN person ON pet.owner = person.id", BOB, owner=True)
    assert len(rows) == 3


def test_rls_cycles_are_rejected(ds):
    add_rule(ds, "person", "SELECT person.* FROM person JOIN pet ON person.id = pet.owner")
    add_rule(ds, "pet", "SELECT pet.* FROM pet JOIN person ON pet.owner = person.id")
    err = compile_error(ds, "SELECT * FROM person", BOB, owner=False)
    assert "Cycle detected in the row-level security rules" in str(err)


def test_invalid_rls_rule_is_reported(ds):
    add_rule(ds, "person", "SELECT * FROM pet")
    err = compile_error(ds, "SELECT * FROM person", BOB, owner=False)
    assert "Invalid row-level security rule for `person`" in str(err)


# ---- DML compilation -------------------------------------------------------------------------------------


def test_dml_requires_owner(ds):
    for text in (
        "INSERT INTO person VALUES (9, 'z', 1)",
        "DELETE FROM person",
        "UPDATE person SET age = 1",
        "SET row_limit = 1",
    ):
        err = compile_error(ds, text, ALICE, owner=False)
        assert isinstance(err, sql.SqlPermissionError)
        assert str(err) == f"Caller {ALICE.to_hex()} is not authorized to run SQL DML statements"


def test_dml_on_system_tables_is_rejected(ds):
    for text in (
        "DELETE FROM st_table",
        "INSERT INTO st_var VALUES ('x', 1)",
        "UPDATE st_table SET table_name = 'x'",
    ):
        err = compile_error(ds, text)
        assert isinstance(err, sql.SqlPermissionError)
        assert "Cannot modify system table" in str(err)


def test_insert_shape_errors(ds):
    assert "Inserting a row with 2 values into `pet` which has 3 fields" in str(
        compile_error(ds, "INSERT INTO pet VALUES (1, 'x')")
    )
    assert (
        "The number of fields (2) in the INSERT does not match the number of columns (3) of the table `pet`"
        in str(compile_error(ds, "INSERT INTO pet (owner, kind) VALUES (1, 'x')"))
    )
    assert "`pet` does not have a field `nope`" in str(compile_error(ds, "INSERT INTO pet (nope) VALUES (1)"))
    assert "cannot be parsed as type `U32` (column `pet.weight`)" in str(
        compile_error(ds, "INSERT INTO pet VALUES (1, 'x', 'heavy')")
    )


def test_set_show_variables(ds):
    assert str(compile_error(ds, "SET nope = 1")) == "nope is not a valid system variable"
    assert str(compile_error(ds, "SHOW nope")) == "nope is not a valid system variable"
    assert "cannot be parsed as type `U64`" in str(compile_error(ds, "SET row_limit = 'x'"))
    assert "cannot be parsed as type `U64`" in str(compile_error(ds, "SET row_limit = -1"))


# ---- subscriptions ---------------------------------------------------------------------------------------


def sub_error(ds, text):
    with ds.begin_tx() as tx, pytest.raises(sql.SqlError) as info:
        sql.compile_subscription(text, tx, OWNER, True)
    return str(info.value)


def test_subscription_restrictions(ds):
    assert "Column projections are not supported in subscriptions" in sub_error(ds, "SELECT id FROM person")
    assert "Column projections are not supported in subscriptions" in sub_error(
        ds, "SELECT COUNT(*) AS n FROM person"
    )
    assert "Unsupported: LIMIT in subscriptions" in sub_error(ds, "SELECT * FROM person LIMIT 1")
    assert "Unsupported: ORDER BY in subscriptions" in sub_error(ds, "SELECT * FROM person ORDER BY id")
    assert "Non-SELECT" in sub_error(ds, "DELETE FROM person")
    assert "at most two tables" in sub_error(
        ds, "SELECT a.* FROM person a JOIN pet b ON a.id = b.owner JOIN person c ON c.id = b.owner"
    )
    assert "SELECT * is not supported for joins" in sub_error(
        ds, "SELECT * FROM person JOIN pet ON person.id = pet.owner"
    )


def test_plan_keys_normalise_spelling(ds):
    with ds.begin_tx() as tx:
        keys = {
            sql.compile_subscription(text, tx, OWNER, True).key()
            for text in (
                "SELECT * FROM person WHERE age = 25 AND name = 'bob'",
                'select "person".* from "person" where name = \'bob\' and 25 = age',
                "SELECT p.* FROM person AS p WHERE p.name = 'bob' AND p.age = 25",
            )
        }
        assert len(keys) == 1
        alice = sql.compile_subscription(
            "SELECT * FROM everything WHERE ident = :sender", tx, ALICE, False
        ).key()
        bob = sql.compile_subscription("SELECT * FROM everything WHERE ident = :sender", tx, BOB, False).key()
        assert alice != bob


# ---- robustness ------------------------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        "SELECT", "*", "FROM", "person", "pet", "everything", "secret", "p", "AS", "JOIN", "ON", "WHERE", "AND",
        "OR", "NOT", "(", ")", "=", "<>", "<", ">=", ",", ".", "id", "name", "age", "owner", "kind", "weight",
        "u8", "i256", "ident", "ts", "opt", "color", "b", "1", "-1", "300", "1e3", "0.5", "'alice'", "'green'",
        "'2025-02-10T15:45:30Z'", "0x01", "TRUE", "NULL", ":sender", "ORDER", "BY", "DESC", "LIMIT", "OFFSET",
        "COUNT(*)", "INSERT", "INTO", "VALUES", "UPDATE", "SET", "DELETE", "SHOW", "row_limit", "person.*",
        "person.id", "pet.owner",
    ]
)  # fmt: skip


_TYPED_LITERALS = {
    "id": ["1", "3", "-1", "1e3"],
    "age": ["25", "30", "300"],
    "name": ["'alice'", "'bob'", "5"],
    "u8": ["8", "0"],
    "i256": ["-1", "1e40"],
    "ident": ["0x01", ":sender"],
    "ts": ["'2025-02-10T15:45:30Z'", "'2030-01-01 00:00:00+02:00'"],
    "opt": ["1", "NULL"],
    "color": ["'green'", "'red'"],
    "b": ["TRUE", "FALSE"],
    "f32": ["0.5", "1.5"],
    "s": ["'hello'"],
    "bytes": ["0x0102"],
}
_TABLE_COLUMNS = {
    "person": ["id", "name", "age"],
    "everything": ["u8", "i256", "ident", "ts", "opt", "color", "b", "f32", "s", "bytes"],
}
_OPS = st.sampled_from(["=", "=", "<>", "<", "<=", ">", ">="])
_ANY_LITERAL = st.sampled_from(sorted({v for vs in _TYPED_LITERALS.values() for v in vs} | {"NULL", "TRUE"}))


def _leaves(table: str) -> st.SearchStrategy[str]:
    column = st.sampled_from(_TABLE_COLUMNS[table])
    typed = column.flatmap(
        lambda c: st.builds(lambda o, v: f"{c} {o} {v}", _OPS, st.sampled_from(_TYPED_LITERALS[c]))
    )
    untyped = st.builds(lambda c, o, v: f"{c} {o} {v}", column, _OPS, _ANY_LITERAL)
    return st.one_of(typed, typed, typed, untyped, column, _ANY_LITERAL)


def _predicates(table: str) -> st.SearchStrategy[str]:
    return st.recursive(
        _leaves(table),
        lambda inner: (
            st.builds(lambda a, b: f"({a} AND {b})", inner, inner)
            | st.builds(lambda a, b: f"{a} OR {b}", inner, inner)
            | st.builds(lambda a: f"NOT {a}", inner)
        ),
        max_leaves=8,
    )


_STATEMENTS = st.one_of(
    st.lists(_WORDS, min_size=1, max_size=20).map(" ".join),
    st.builds(lambda p: f"SELECT * FROM person WHERE {p}", _predicates("person")),
    st.builds(lambda p: f"SELECT * FROM everything WHERE {p}", _predicates("everything")),
    st.builds(
        lambda p, c: f"SELECT id, name FROM person WHERE {p} ORDER BY {c} DESC LIMIT 3",
        _predicates("person"),
        st.sampled_from(_TABLE_COLUMNS["person"]),
    ),
    st.builds(lambda p: f"SELECT COUNT(*) AS n FROM everything WHERE {p}", _predicates("everything")),
    st.builds(
        lambda p: f"SELECT person.* FROM person JOIN pet ON person.id = pet.owner WHERE {p}",
        _predicates("person"),
    ),
    st.builds(lambda p: f"UPDATE person SET age = 1 WHERE {p}", _predicates("person")),
    st.builds(lambda p: f"DELETE FROM everything WHERE {p}", _predicates("everything")),
    st.builds(
        lambda vs: f"INSERT INTO pet VALUES ({', '.join(vs)})", st.lists(_ANY_LITERAL, min_size=1, max_size=4)
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_STATEMENTS, owner=st.booleans())
def test_any_statement_compiles_and_runs_or_raises_a_sql_error(ds, text, owner):
    tx = ds.begin_mut_tx()
    try:
        plan = sql.compile(text, tx, ALICE, owner)
        sql.execute(plan, tx)
    except sql.SqlError:
        pass
    finally:
        ds.rollback(tx)
