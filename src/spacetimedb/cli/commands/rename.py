"""``spacetime rename --to NEW DATABASE``: give a database a new name (its only one), as upstream's command."""

from __future__ import annotations

import json

import click

from spacetimedb.cli.commands._database import DATABASE_NAME, database_argument, open_database, summary
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import server_option


@click.command("rename")
@click.option("--to", "new_name", required=True, metavar="NEW_NAME", help="The name the database gets.")
@database_argument()
@server_option
@click.option(
    "-y", "--yes", "assume_yes", is_flag=True, hidden=True, help="Accepted as upstream's; never asks."
)
@pass_cli
def rename(cli: CliContext, new_name: str, database: str, server: str | None, assume_yes: bool) -> None:
    """Replace every name of the database NAME (a name or identity) with NEW_NAME (only its owner may)."""
    if DATABASE_NAME.fullmatch(new_name) is None:
        raise CliError(
            f"{new_name!r} is not a database name",
            hint="use lower-case letters and digits, single dashes between them, e.g. quickstart-chat",
        )
    client = open_database(cli, server, database)
    identity = client.check(client.request("GET", "/identity")).text().strip()
    response = client.request("PUT", "/names", json=[new_name])
    if response.status == 400:
        raise CliError(f"cannot rename {client.shown} to {new_name!r}: {summary(_reason(response.text()))}")
    client.check(response)
    click.echo(f"Name set to {new_name} for identity {identity}.")


def _reason(text: str) -> str:
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    return str(payload.get("OtherError", text)) if isinstance(payload, dict) else text
