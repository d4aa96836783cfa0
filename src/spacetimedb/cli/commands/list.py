"""``spacetime list``: the databases owned by the identity this CLI uses on a server."""

from __future__ import annotations

import json
from typing import Any

import click

from spacetimedb.cli.commands._database import DatabaseClient, format_table, identity_of
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import json_option, server_option
from spacetimedb.cli.servers import ServerTarget


@click.command("list")
@server_option
@json_option
@pass_cli
def list_databases(cli: CliContext, server: str | None, as_json: bool) -> None:
    """List the databases owned by your identity on a server, with their names."""
    from spacetimedb.cli import http

    target = cli.resolve_server(server)
    token = cli.token_for(target)
    identity = identity_of(cli, target, token)
    response = http.request("GET", target.endpoint(f"/v1/identity/{identity}/databases"), token=token)
    payload = http.raise_for_status(response, target).json()
    owned = payload.get("identities") if isinstance(payload, dict) else None
    if not isinstance(owned, list):
        raise CliError(f"GET {response.url} did not return a list of databases")
    databases: list[dict[str, Any]] = [
        {"identity": str(db), "names": _names(target, token, str(db))} for db in owned
    ]
    if as_json:
        click.echo(json.dumps({"identity": identity, "databases": databases}, indent=2))
        return
    if not databases:
        click.echo(f"No databases found for {identity}.")
        return
    click.echo(f"Associated databases for identity {identity}:\n")
    rows = [[", ".join(db["names"]), db["identity"]] for db in databases]
    click.echo(format_table(["Database Name(s)", "Identity"], rows))


def _names(target: ServerTarget, token: str, database: str) -> list[str]:
    client = DatabaseClient(target=target, token=token, database=database)
    payload = client.check(client.request("GET", "/names")).json()
    names = payload.get("names") if isinstance(payload, dict) else None
    return [str(name) for name in names] if isinstance(names, list) else []
