"""``spacetime login``: obtain an identity token from a server, and ``login show`` the saved one."""

from __future__ import annotations

import json

import click

from spacetimedb.cli.config import SavedToken
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.identity import claimed_identity, login_with_new_identity
from spacetimedb.cli.options import json_option, server_option
from spacetimedb.cli.servers import ServerTarget


@click.group("login", invoke_without_command=True)
@click.option(
    "--server-issued-login",
    "server",
    metavar="NICKNAME_OR_URL",
    help="Obtain a new identity from this server itself (a local server issues its own tokens).",
)
@click.option(
    "--token",
    "given_token",
    metavar="TOKEN",
    help="Save this identity token (for -s/--server, default: the default server) instead of obtaining one.",
)
@click.option("--no-browser", is_flag=True, help="Accepted as upstream's; this CLI never opens a browser.")
@click.option(
    "-s",
    "--server",
    "target_server",
    metavar="NICKNAME_OR_URL",
    default=None,
    help="With --token: the server the token is for. Default: the default server.",
)
@click.pass_context
def login(
    ctx: click.Context,
    server: str | None,
    given_token: str | None,
    no_browser: bool,
    target_server: str | None,
) -> None:
    """Obtain an identity token from a server and save it for that server's host.

    The token is only ever sent to the server that issued it. Messages are upstream's: "Logged out (identity
    ...)." for the token this replaces, then "Logged in with identity ..." (or "Token saved." for a --token
    that does not say its identity).
    """
    if ctx.invoked_subcommand is not None:
        if server is not None or given_token is not None:
            raise click.UsageError(
                "--server-issued-login and --token cannot be combined with a subcommand", ctx
            )
        return
    if server is not None and given_token is not None:
        raise click.UsageError("choose one of --server-issued-login and --token", ctx)
    if server is None and given_token is None:
        raise click.UsageError(
            "choose how to log in: --server-issued-login NICKNAME_OR_URL, or --token TOKEN", ctx
        )
    cli = ctx.ensure_object(CliContext)
    if given_token is not None:
        _save_given_token(cli, cli.resolve_server(target_server), given_token)
        return
    assert server is not None
    target = cli.resolve_server(server)
    result = login_with_new_identity(cli.config_path, target)
    if result.replaced is not None:
        click.echo(f"Logged out (identity {result.replaced.identity or 'unknown'}).")
    click.echo(f"Logged in with identity {result.identity}")
    click.echo(f"(on {target.display}; this identity is valid only on that server)")


def _save_given_token(cli: CliContext, target: ServerTarget, token: str) -> None:
    identity = claimed_identity(token)
    with cli.edit_config() as config:
        previous = config.forget_token(target.host_key)
        config.save_token(target.host_key, SavedToken(token=token, identity=identity))
    if previous is not None and previous.token != token:
        click.echo(f"Logged out (identity {previous.identity or 'unknown'}).")
    click.echo(f"Logged in with identity {identity}" if identity else "Token saved.")
    click.echo(f"(for {target.display})")


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
        click.echo("You are not logged in. Run `spacetime login` to log in.")
        click.echo(
            f"(no token is saved for {target.display}; `spacetime login --server-issued-login {target.label}`)"
        )
        return
    click.echo(f"You are logged in as {saved.identity or 'unknown'}")
    click.echo(f"(on {target.display})")
    if show_token:
        click.echo(f"Your auth token (don't share this!) is {saved.token}")
