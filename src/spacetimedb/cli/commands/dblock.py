"""``spacetime lock`` / ``spacetime unlock``: protect a database against deletion, as upstream's commands.

A locked database refuses ``spacetime delete``, ``publish --delete-data`` and a replacing ``restore``; updates
that keep the data still work. Only the owner may lock or unlock; doing either twice is harmless.
"""

from __future__ import annotations

import click

from spacetimedb.cli.commands._database import database_argument, open_database
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.options import server_option


def _set_lock(cli: CliContext, server: str | None, database: str, locked: bool) -> str:
    client = open_database(cli, server, database)
    identity = client.check(client.request("GET", "/identity")).text().strip()
    client.check(client.request("POST", "/lock" if locked else "/unlock"))
    return identity


@click.command("lock")
@database_argument()
@server_option
@pass_cli
def lock(cli: CliContext, database: str, server: str | None) -> None:
    """Lock the database NAME so that it cannot be deleted (nor its data deleted) until unlocked."""
    identity = _set_lock(cli, server, database, True)
    click.echo(f"Database {identity} is now locked. It cannot be deleted until unlocked.")


@click.command("unlock")
@database_argument()
@server_option
@pass_cli
def unlock(cli: CliContext, database: str, server: str | None) -> None:
    """Unlock the database NAME, so that its owner may delete it again."""
    identity = _set_lock(cli, server, database, False)
    click.echo(f"Database {identity} is now unlocked.")
