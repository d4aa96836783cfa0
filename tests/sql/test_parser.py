import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetimedb import sql
from spacetimedb.sql import ast
from spacetimedb.sql.parser import parse_uncached


def test_select_star_with_where():
    stmt = sql.parse("SELECT * FROM t WHERE a = 1")
    assert stmt == ast.Select(
        ast.Star(),
        ast.TableRef("t"),
        where=ast.Compare("=", ast.Column(None, "a"), ast.Literal("number", "1")),
    )


def test_keywords_are_case_insensitive_names_are_not():
    stmt = sql.parse("select * from Person where Name = 'x'")
    assert stmt.table == ast.TableRef("Person")
    assert stmt.where.left == ast.Column(None, "Name")


def test_double_quoted_identifiers_as_the_typescript_sdk_sends():
    stmt = sql.parse('SELECT * FROM "t" WHERE "t"."select" = 1')
    assert stmt.table.name == "t"
    assert stmt.where.left == ast.Column("t", "select")
    assert sql.parse('SELECT * FROM "we""ird"').table.name == 'we"ird'


def test_projections():
    assert sql.parse("SELECT t.* FROM t").projection == ast.Star("t")
    cols = sql.parse("SELECT a, t.b AS x, c y FROM t").projection
    assert cols == ast.Columns(
        (
            ast.ProjectColumn(ast.Column(None, "a"), None),
            ast.ProjectColumn(ast.Column("t", "b"), "x"),
            ast.ProjectColumn(ast.Column(None, "c"), "y"),
        )
    )
    assert sql.parse("SELECT COUNT(*) AS n FROM t").projection == ast.Count("n")
    assert sql.parse("select count(*) from t").projection == ast.Count(None)


def test_joins_with_aliases():
    stmt = sql.parse("SELECT a.* FROM t AS a JOIN u b ON a.x = b.y INNER JOIN v ON v.z = a.x")
    assert stmt.table == ast.TableRef("t", "a")
    assert [j.table for j in stmt.joins] == [ast.TableRef("u", "b"), ast.TableRef("v")]
    assert stmt.joins[0].on == ast.Compare("=", ast.Column("a", "x"), ast.Column("b", "y"))


def test_predicate_precedence_not_and_or():
    where = sql.parse("SELECT * FROM t WHERE a = 1 OR NOT b = 2 AND (c = 3 OR d = 4)").where
    assert isinstance(where, ast.Or)
    left, right = where.items
    assert left == ast.Compare("=", ast.Column(None, "a"), ast.Literal("number", "1"))
    assert isinstance(right, ast.And)
    assert isinstance(right.items[0], ast.Not)
    assert isinstance(right.items[1], ast.Or)


@pytest.mark.parametrize(
    ("text", "op"),
    [("=", "="), ("<>", "<>"), ("!=", "<>"), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
)
def test_comparison_operators(text, op):
    assert sql.parse(f"SELECT * FROM t WHERE a {text} 1").where.op == op


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("-1", ast.Literal("number", "-1")),
        ("+1", ast.Literal("number", "1")),
        ("1.5e3", ast.Literal("number", "1.5e3")),
        (".1", ast.Literal("number", ".1")),
        ("'it''s'", ast.Literal("string", "it's")),
        ("0xDEADbeef", ast.Literal("hex", "DEADbeef")),
        ("X'00ff'", ast.Literal("hex", "00ff")),
        ("TRUE", ast.Literal("bool", "true")),
        ("false", ast.Literal("bool", "false")),
        ("NULL", ast.Literal("null", "NULL")),
    ],
)
def test_literals(text, literal):
    assert sql.parse(f"SELECT * FROM t WHERE a = {text}").where.right == literal


def test_sender_parameter():
    assert sql.parse("SELECT * FROM t WHERE owner = :sender").where.right == ast.Param("sender")


def test_order_limit_offset_in_either_order():
    stmt = sql.parse("SELECT * FROM t ORDER BY a DESC, b ASC, c LIMIT 5 OFFSET 2")
    assert stmt.order_by == (
        ast.OrderItem(ast.Column(None, "a"), True),
        ast.OrderItem(ast.Column(None, "b"), False),
        ast.OrderItem(ast.Column(None, "c"), False),
    )
    assert (stmt.limit, stmt.offset) == (ast.Literal("number", "5"), ast.Literal("number", "2"))
    assert sql.parse("SELECT * FROM t OFFSET 2 LIMIT 5").limit == ast.Literal("number", "5")


def test_dml_and_variables():
    assert sql.parse("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')") == ast.Insert(
        "t",
        ("a", "b"),
        (
            (ast.Literal("number", "1"), ast.Literal("string", "x")),
            (ast.Literal("number", "2"), ast.Literal("string", "y")),
        ),
    )
    assert sql.parse("INSERT INTO t VALUES (1)").columns is None
    update = sql.parse("UPDATE t SET a = 1, b = 'z' WHERE c = 2")
    assert update.assignments == (
        ast.Assignment("a", ast.Literal("number", "1")),
        ast.Assignment("b", ast.Literal("string", "z")),
    )
    assert sql.parse("DELETE FROM t") == ast.Delete("t", None)
    assert sql.parse("SET row_limit = 10") == ast.SetVar("row_limit", ast.Literal("number", "10"))
    assert sql.parse("SET row_limit TO 10") == ast.SetVar("row_limit", ast.Literal("number", "10"))
    assert sql.parse("SHOW row_limit") == ast.ShowVar("row_limit")


def test_union():
    stmt = sql.parse("SELECT * FROM t WHERE a = 1 UNION SELECT * FROM t WHERE a = 2")
    assert isinstance(stmt, ast.Union) and stmt.distinct and len(stmt.selects) == 2
    stmt = sql.parse(
        "SELECT * FROM t UNION ALL SELECT t.* FROM t JOIN u ON t.a = u.b UNION ALL SELECT * FROM t"
    )
    assert isinstance(stmt, ast.Union) and not stmt.distinct and len(stmt.selects) == 3
    assert sql.parse(stmt.to_sql()) == stmt


def test_scripts_and_comments():
    statements = sql.parse_script("SELECT * FROM t; -- a comment\n /* block */ SHOW row_limit;;")
    assert [type(s) for s in statements] == [ast.Select, ast.ShowVar]
    assert sql.parse_script("  ;  ") == []
    assert sql.parse("SELECT * FROM t;") == sql.parse("SELECT * FROM t")


def test_canonical_rendering_round_trips():
    text = "SELECT a.* FROM \"t\" AS a JOIN u ON a.x = u.y WHERE NOT (a.z = 1 OR a.w <> 'q') AND u.b >= -2 LIMIT 3"
    stmt = sql.parse(text)
    assert sql.parse(stmt.to_sql()) == stmt


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Empty SQL query"),
        ("SELECT * FROM t; SELECT * FROM u", "Multiple SQL statements are not supported"),
        ("SELECT *", "A FROM clause is required"),
        ("SELECT * FROM", "Expected a table name, found end of input"),
        ("SELECT * FROM t WHERE", "Expected a column, a literal or a parameter, found end of input"),
        ("SELECT * FROM t WHERE a = ", "found end of input"),
        ("SELECT * FROM t, u", "Implicit joins are not supported"),
        ("SELECT * FROM t LEFT JOIN u ON t.a = u.b", "Non-inner joins are not supported"),
        ("SELECT DISTINCT a FROM t", "Unsupported: SELECT DISTINCT"),
        ("SELECT * FROM t GROUP BY a", "Unsupported: GROUP BY"),
        ("SELECT * FROM t INTERSECT SELECT * FROM u", "Unsupported: set operations (INTERSECT)"),
        ("SELECT * FROM t UNION SELECT * FROM u UNION ALL SELECT * FROM v", "mixing UNION and UNION ALL"),
        ("SELECT * FROM t UNION DELETE FROM t", "Expected SELECT after UNION"),
        ("SELECT t.*, a FROM t", "Mixed wildcard projections are not supported"),
        ("SELECT SUM(a) FROM t", "Unsupported aggregate: SUM(...)"),
        ("SELECT * FROM t WHERE a IN (1, 2)", "Unsupported operator: IN"),
        ("SELECT * FROM t WHERE a + 1 = 2", "Unsupported: arithmetic"),
        ("SELECT * FROM t WHERE 'abc", "Unterminated quoted string at position 22"),
        ('SELECT * FROM "t', "Unterminated quoted identifier"),
        ("SELECT * FROM t WHERE a = 1 /* x", "Unterminated comment"),
        ("SELECT * FROM t WHERE a = #", "Unexpected character '#' at position 26"),
        ("CREATE TABLE t (a INT)", "Unsupported statement: CREATE"),
        ("DROP TABLE t", "Unsupported statement: DROP"),
        ("SELECT * FROM t LIMIT x", "Expected a number after LIMIT"),
        ("SELECT * FROM (SELECT * FROM t)", "Unsupported: subqueries in FROM"),
        ("DELETE FROM t, u", "Multi-table DELETE is not supported"),
        ("SELECT * FROM t WHERE a = 1 b", "Expected end of statement, found `b`"),
        ("SELECT * FROM select", "Expected a table name, found `select`"),
    ],
)
def test_syntax_errors(text, message):
    with pytest.raises(sql.SqlError) as info:
        sql.parse(text)
    assert message in str(info.value)


def test_text_length_is_bounded():
    ok = "SELECT * FROM t WHERE " + " OR ".join(["a = 1"] * 5000)
    assert len(ok.encode()) < sql.MAX_QUERY_BYTES
    assert len(sql.parse(ok).where.items) == 5000
    with pytest.raises(sql.SqlLimitError, match="maximum allowed length of 50000 bytes"):
        sql.parse("SELECT * FROM t WHERE a = '" + "x" * 50_000 + "'")
    # multi-byte characters count as bytes
    with pytest.raises(sql.SqlLimitError):
        sql.parse("SELECT * FROM t WHERE a = '" + "é" * 25_000 + "'")


def test_nesting_depth_is_bounded():
    nested = "SELECT * FROM t WHERE " + "(" * 60 + "a = 1" + ")" * 60
    assert sql.parse(nested).where.right.text == "1"
    with pytest.raises(sql.SqlLimitError, match="Recursion limit exceeded"):
        sql.parse("SELECT * FROM t WHERE " + "(" * 10_000 + "a = 1" + ")" * 10_000)
    with pytest.raises(sql.SqlLimitError, match="Recursion limit exceeded"):
        sql.parse("SELECT * FROM t WHERE " + "NOT " * 10_000 + "a = 1")


def test_cache_returns_equal_results_and_uncached_parser_agrees():
    text = "SELECT * FROM t WHERE a = 1"
    assert sql.parse_script(text) == sql.parse_script(text) == parse_uncached(text)


_SQL_WORDS = st.sampled_from(
    [
        "SELECT", "FROM", "WHERE", "JOIN", "ON", "AND", "OR", "NOT", "*", "t", "u", "a", ".", ",", "(", ")",
        "=", "<>", "<", ">=", "1", "-2", "'x'", "0xff", ":sender", "LIMIT", "ORDER", "BY", "INSERT", "INTO",
        "VALUES", "UPDATE", "SET", "DELETE", "SHOW", "COUNT", "AS", ";", '"q"', "TRUE", "NULL", "1e999",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_SQL_WORDS, max_size=30).map(" ".join)))
def test_garbage_raises_only_sql_errors(text):
    try:
        statements = sql.parse_script(text)
    except sql.SqlError:
        return
    for statement in statements:
        assert sql.parse(statement.to_sql()) == statement
