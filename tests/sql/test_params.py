"""Positional parameters (``$1``, ...): where they may stand, the types they take from what they meet, and their
values (as literals, or as text read the way a literal of their type is written)."""

import pytest

from spacetimedb import sql
from spacetimedb.sats import STRING, U8, U64
from spacetimedb.sql import ast
from spacetimedb.sql.params import Bindings

from .fixtures import ALICE, OWNER


def describe(ds, text, owner=True):
    bindings = Bindings(None)
    with ds.begin_tx() as tx:
        plan = sql.compile_statement(sql.parse(text), tx, OWNER if owner else ALICE, owner, bindings)
    return bindings.ordered_types(), plan


def run(ds, text, *values):
    bindings = Bindings([ast.Literal(kind, value) for kind, value in values])
    with ds.begin_tx() as tx:
        plan = sql.compile_statement(sql.parse(text), tx, OWNER, True, bindings)
        return sql.execute(plan, tx).rows


def test_a_parameter_takes_the_type_of_what_it_meets(ds):
    types, plan = describe(ds, "SELECT name FROM person WHERE id = $1 AND age > $2 LIMIT $3")
    assert types == [U64, U8, U64]
    assert isinstance(plan, sql.SelectPlan)
    assert describe(ds, "INSERT INTO person (name, age) VALUES ($2, $1)")[0] == [U8, STRING]
    assert describe(ds, "UPDATE person SET name = $1 WHERE id = $2")[0] == [STRING, U64]
    assert describe(ds, "SELECT * FROM person")[0] == []


def test_values_given_as_text_or_literals(ds):
    assert run(ds, "SELECT name FROM person WHERE id = $1", ("text", "2")) == run(
        ds, "SELECT name FROM person WHERE id = 2"
    )
    assert run(ds, "SELECT id FROM person WHERE name = $1", ("string", "bob")) == run(
        ds, "SELECT id FROM person WHERE name = 'bob'"
    )
    # the text of a number is a string where a string is expected: no injection through a value
    assert run(ds, "SELECT id FROM person WHERE name = $1", ("text", "x' OR 1=1 --")) == []


def test_parameter_errors_are_sql_errors(ds):
    with pytest.raises(sql.SqlTypeError, match=r"could not determine the data type of parameter \$1"):
        describe(ds, "SELECT * FROM person WHERE id = $2")
    with pytest.raises(sql.SqlTypeError, match=r"Parameter \$1 is used both as `U64` and as `String`"):
        describe(ds, "SELECT * FROM person WHERE id = $1 OR name = $1")
    with pytest.raises(sql.SqlNameError, match=r"there is no parameter \$2"):
        run(ds, "SELECT * FROM person WHERE id = $1 AND age = $2", ("text", "1"))
    with pytest.raises(sql.SqlTypeError, match="cannot be parsed as type `U8`"):
        run(ds, "SELECT * FROM person WHERE age = $1", ("text", "300"))
    # without bindings (a subscription, /sql): no parameter has a value
    with pytest.raises(sql.SqlNameError, match=r"there is no parameter \$1"), ds.begin_tx() as tx:
        sql.compile("SELECT * FROM person WHERE id = $1", tx, OWNER, True)


def test_a_parameter_is_written_back_as_it_was_given():
    statement = sql.parse("SELECT * FROM person WHERE id = $1")
    assert "$1" in statement.to_sql()
