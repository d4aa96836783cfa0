"""``spacetime login``: obtain an identity token from a server, and ``login show`` the saved one."""

from __future__ import annotations

import json

import click

from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.identity import login_with_new_identity
from spacetimedb.cli.options import json_option, server_option


@click.group("login", invoke_without_command=True)
@click.option(
    "--server-issued-login",
    "server",
    metavar="NICKNAME_OR_URL",
    help="Obtain a new identity from this server itself (a local server issues its own tokens).",
)
@click.pass_context
def login(ctx: click.Context, server: str | None) -> None:
    """Obtain an identity token from a server and save it for that server's host.

    The token is only ever sent to the server that issued it.
    """
    if ctx.invoked_subcommand is not None:
        if server is not None:
            raise click.UsageError("--server-issued-login cannot be combined with a subcommand", ctx)
        return
    if server is None:
        raise click.UsageError("choose how to log in: --server-issued-login NICKNAME_OR_URL", ctx)
    cli = ctx.ensure_object(CliContext)
    target = cli.resolve_server(server)
    result = login_with_new_identity(cli.config_path, target)
    if result.replaced is not None:
        click.echo(
            f"replaced the identity saved for {target.host_key} ({result.replaced.identity or 'unknown'}); "
            "databases it owns stay owned by it",
            err=True,
        )
    click.echo(f"Logged in to {target.display} as identity {result.identity}")
    click.echo("This identity is valid only on that server.")


@login.command("show")
@server_option
@click.option("--token", "show_token", is_flag=True, help="Also print the token (keep it secret).")
@json_option
@pass_cli
def show(cli: CliContext, server: str | None, show_token: bool, as_json: bool) -> None:
    """Show the identity saved for a server (default: the default server)."""
    config = cli.read_config()
    target = cli.resolve_server(server, config)
    saved = config.saved_token(target.host_key)
    if as_json:
        payload = {
            "server": target.label,
            "url": target.url,
            "logged_in": saved is not None,
            "identity": None if saved is None else saved.identity,
        }
        if show_token:
            payload["token"] = None if saved is None else saved.token
        click.echo(json.dumps(payload, indent=2))
        return
    if saved is None:
        click.echo(f"Not logged in to {target.display}.")
        click.echo(f"Log in with `spacetime login --server-issued-login {target.label}`.")
        return
    click.echo(f"Logged in to {target.display} as identity {saved.identity or 'unknown'}")
    if show_token:
        click.echo(f"Token (do not share it): {saved.token}")
