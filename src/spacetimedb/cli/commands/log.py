"""``spacetime log``: the transactions of a database (owner only), from its commitlog.

``GET /v1/database/NAME/transactions?from=X&limit=N`` answers with offset, time, reducer, caller and the rows
inserted and deleted per table of each; printed as a table, or as the server's JSON with ``--json``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from spacetimedb.cli.commands._database import database_argument, format_table, open_database, summary
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import json_option, server_option


@click.command("log")
@database_argument()
@click.option(
    "--from",
    "first",
    type=click.IntRange(min=0),
    default=None,
    help="The first offset to list (default: the newest).",
    metavar="OFFSET",
)
@click.option(
    "--limit", "-n", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many."
)
@json_option
@server_option
@pass_cli
def log(
    cli: CliContext, database: str, first: int | None, limit: int, as_json: bool, server: str | None
) -> None:
    """List the transactions of the database NAME: offset, time, reducer, caller, rows per table (owner only).

    An offset is what `spacetime sql NAME QUERY --as-of OFFSET` reads the database right after."""
    client = open_database(cli, server, database)
    query = {"limit": str(limit), **({"from": str(first)} if first is not None else {})}
    response = client.request("GET", "/transactions", query=query)
    client.raise_for_shared_status(response.status, response.text())
    if response.status == 400:
        raise CliError(summary(response.text()))
    entries = client.check(response).json()
    if as_json:
        click.echo(json.dumps(entries))
        return
    if not entries:
        click.echo("no transactions there")
        return
    click.echo(format_table(["offset", "time", "reducer", "caller", "rows"], [_row(e) for e in entries]))


def _row(entry: dict[str, Any]) -> list[str]:
    changes = []
    for table, counts in entry.get("tables", {}).items():
        parts = []
        if counts.get("inserted"):
            parts.append(f"+{counts['inserted']}")
        if counts.get("deleted"):
            parts.append(f"-{counts['deleted']}")
        if counts.get("truncated"):
            parts.append("truncated")
        changes.append(f"{table} {' '.join(parts)}")
    caller = entry.get("caller")
    return [
        str(entry.get("offset")),
        entry.get("time") or "",
        entry.get("reducer") or "(system)",
        caller[:16] if caller else "",
        ", ".join(changes),
    ]
