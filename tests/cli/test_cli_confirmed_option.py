"""`--confirmed` on `sql` and `subscribe`: ours is a bare flag, upstream's takes `true`/`false` (its smoketests
write `sql --confirmed true DB QUERY`); both spellings mean the same."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from spacetimedb.cli.options import ConfirmedCommand


@click.command(cls=ConfirmedCommand)
@click.argument("rest", nargs=-1)
@click.option("--confirmed", is_flag=True)
def probe(rest: tuple[str, ...], confirmed: bool) -> None:
    click.echo(f"{confirmed} {list(rest)}")


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--confirmed", "db", "SELECT 1"], "True ['db', 'SELECT 1']"),
        (["--confirmed", "true", "db", "SELECT 1"], "True ['db', 'SELECT 1']"),
        (["--confirmed", "FALSE", "db", "SELECT 1"], "False ['db', 'SELECT 1']"),
        (["--confirmed=true", "db"], "True ['db']"),
        (["db", "SELECT 1", "--confirmed"], "True ['db', 'SELECT 1']"),
        (["db", "--", "--confirmed", "true"], "False ['db', '--confirmed', 'true']"),
        (["db", "SELECT 1"], "False ['db', 'SELECT 1']"),
    ],
)
def test_both_spellings_of_confirmed(args: list[str], shown: str) -> None:
    result = CliRunner().invoke(probe, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown


def test_a_value_that_is_no_boolean_is_refused() -> None:
    result = CliRunner().invoke(probe, ["--confirmed=yes", "db"])
    assert result.exit_code == 2 and "'yes' is not true or false" in result.output
