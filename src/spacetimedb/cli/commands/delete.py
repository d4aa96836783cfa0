"""``spacetime delete``: delete a database (owner only), after confirmation."""

from __future__ import annotations

import click

from spacetimedb.cli.commands._database import ask, database_argument, open_database
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.options import server_option, yes_option


@click.command("delete")
@database_argument()
@yes_option
@server_option
@pass_cli
def delete(cli: CliContext, database: str, assume_yes: bool, server: str | None) -> None:
    """Delete the database NAME and all its data (only its owner may)."""
    client = open_database(cli, server, database)
    # Look it up first: the server answers a DELETE of an unknown database with success, we say so instead.
    identity = client.check(client.request("GET", "/identity")).text().strip()
    shown = database if database == identity else f"{database} ({identity})"
    answer = ask(
        f"Are you sure you want to delete database {shown}? This action cannot be undone.", assume_yes
    )
    if not answer:
        # upstream prints this and succeeds, deleting nothing (smoketest cluster/delete_database.rs,
        # test_delete_database_aborts_without_confirmation); scripts rely on the exit status being 0
        click.echo("Aborting")
        if answer is None:
            click.echo("hint: nothing was read from standard input; pass -y/--yes to delete it", err=True)
        return
    client.check(client.request("DELETE"))
    click.echo(f"Deleted database {shown}")
