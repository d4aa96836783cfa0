"""``spacetime lock`` / ``spacetime unlock``: protect a database against deletion, as upstream's commands.

A locked database refuses ``spacetime delete``, ``publish --delete-data`` and a replacing ``restore``; updates
that keep the data still work. Only the owner may lock or unlock; doing either twice is harmless.
"""

from __future__ import annotations

import click

from spacetimedb.cli.commands._database import database_argument, open_database
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.options import server_option


def _lock_command(name: str, summary: str, done: str) -> click.Command:
    """``lock`` or ``unlock`` (also the name of the server's route): set the database's lock, then print ``done``
    (with ``{identity}``)."""

    @click.command(name, help=summary)
    @database_argument()
    @server_option
    @pass_cli
    def command(cli: CliContext, database: str, server: str | None) -> None:
        client = open_database(cli, server, database)
        identity = client.check(client.request("GET", "/identity")).text().strip()
        client.check(client.request("POST", f"/{name}"))
        click.echo(done.format(identity=identity))

    return command


# upstream's messages (crates/cli/src/subcommands/lock.rs, unlock.rs)
lock = _lock_command(
    "lock",
    "Lock the database NAME so that it cannot be deleted (nor its data deleted) until unlocked.",
    "Database {identity} is now locked. It cannot be deleted until unlocked.",
)
unlock = _lock_command(
    "unlock",
    "Unlock the database NAME, so that its owner may delete it again.",
    "Database {identity} is now unlocked.",
)
