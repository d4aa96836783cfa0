"""``spacetime logout``: forget the identity token saved for a server's host, with upstream's messages."""

from __future__ import annotations

import click

from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.options import server_option
from spacetimedb.cli.servers import resolve_server


@click.command("logout")
@server_option
@click.option("--all", "forget_all", is_flag=True, help="Forget the tokens saved for every server.")
@pass_cli
def logout(cli: CliContext, server: str | None, forget_all: bool) -> None:
    """Forget the token saved for a server (default: the default server).

    Databases owned by that identity cannot be managed any more without the token. As SpacetimeDB's logout,
    this also removes its global login keys (spacetimedb_token, web_session_token) from the config.
    """
    if forget_all:
        if server is not None:
            raise click.UsageError("--all cannot be combined with -s/--server")
        with cli.edit_config() as config:
            forgotten = [key for key in config.saved_tokens() if config.forget_token(key) is not None]
            config.forget_upstream_login()
        click.echo(f"Forgot {len(forgotten)} saved token(s)." if forgotten else "No tokens were saved.")
        return
    with cli.edit_config() as config:
        target = resolve_server(config, server)
        forgotten_token = config.forget_token(target.host_key)
        had_upstream_login = config.forget_upstream_login()
    if forgotten_token is None:
        # upstream's words (crates/cli/src/subcommands/logout.rs; smoketest standalone/cli/auth.rs)
        click.echo("Logged out." if had_upstream_login else "You are not logged in.")
        click.echo(f"(no token was saved for {target.display})")
        return
    click.echo(f"Logged out (identity {forgotten_token.identity or 'unknown'}).")
    click.echo(f"(forgot the token saved for {target.display})")
