"""``spacetime server ...``: manage the saved servers in the config, ping them, fetch their public keys."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from typing import Any

import click

from spacetimedb.cli.config import Config
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import json_option, yes_option
from spacetimedb.cli.servers import ServerConfig, ServerTarget, parse_server_url, validate_nickname

PING_PATH = "/v1/ping"
PUBLIC_KEY_PATH = "/v1/identity/public-key"
PEM_HEADER = "-----BEGIN PUBLIC KEY-----"


@click.group("server")
def server() -> None:
    """Manage saved servers: add, list, remove, set-default, ping, fingerprint."""


@server.command("add")
@click.argument("name_or_url", metavar="NAME|URL")
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="The server's URL; NAME is then its nickname (upstream's form).",
)
@click.option("--name", "nickname", default=None, metavar="NICK", help="Nickname for the server at URL.")
@click.option("-d", "--default", "make_default", is_flag=True, help="Make it the default server.")
@click.option("--no-fingerprint", is_flag=True, help="Do not fetch and save the server's public key.")
@pass_cli
def add(
    cli: CliContext,
    name_or_url: str,
    url: str | None,
    nickname: str | None,
    make_default: bool,
    no_fingerprint: bool,
) -> None:
    """Save a server under a nickname: `server add NAME --url URL` (as upstream) or `server add URL --name NAME`.

    URL is http[s]://host[:port].
    """
    if url is not None and nickname is not None:
        raise click.UsageError(
            "give either --url (upstream's `server add NAME --url URL`) or --name, not both"
        )
    if url is None and nickname is None:
        missing = "--name" if "://" in name_or_url else "--url"
        raise click.UsageError(
            f"Missing option '{missing}': `server add NAME --url URL` or `server add URL --name NAME`"
        )
    if url is None:
        url = name_or_url
    else:
        nickname = name_or_url
    assert nickname is not None
    protocol, host = parse_server_url(url)
    new_server = ServerConfig(nickname=validate_nickname(nickname), host=host, protocol=protocol)
    if not no_fingerprint:
        cli.read_config().check_can_add(new_server)  # fail on a duplicate before the network round trip
        public_key = _fetch_public_key(
            ServerTarget(protocol=protocol, host=host), unreachable_hint=_add_hint(url, nickname)
        )
        new_server = ServerConfig(
            nickname=nickname, host=host, protocol=protocol, ecdsa_public_key=public_key
        )
    with cli.edit_config() as config:
        config.add_server(new_server)
        if make_default:
            config.set_default_server(nickname)
    click.echo(f"Host: {host}")  # upstream's two lines (smoketest standalone/servers.rs), then ours
    click.echo(f"Protocol: {protocol}")
    suffix = " (default)" if make_default else ""
    click.echo(f"Added server {nickname}: {new_server.url}{suffix}")
    if new_server.ecdsa_public_key is not None:
        click.echo(f"Fingerprint: {fingerprint_of(new_server.ecdsa_public_key)}")


@server.command("edit")
@click.argument("server_name", metavar="SERVER")
@click.option("--new-name", default=None, metavar="NICK", help="A new nickname.")
@click.option("--url", default=None, metavar="URL", help="A new URL (http[s]://host[:port]).")
@click.option("--no-fingerprint", is_flag=True, help="Do not fetch the new host's public key.")
@yes_option
@pass_cli
def edit(
    cli: CliContext,
    server_name: str,
    new_name: str | None,
    url: str | None,
    no_fingerprint: bool,
    assume_yes: bool,
) -> None:
    """Change a saved server's nickname or URL, as upstream's `server edit` (the default stays the default)."""
    old = cli.read_config().find_server(server_name)
    if old is None:
        raise CliError(
            f"no saved server named {server_name!r}", hint="see the saved ones with `spacetime server list`"
        )
    protocol, host = parse_server_url(url) if url is not None else (old.protocol, old.host)
    nickname = validate_nickname(new_name) if new_name is not None else old.nickname
    public_key = old.ecdsa_public_key if host == old.host and protocol == old.protocol else None
    if public_key is None and not no_fingerprint and (host, protocol) != (old.host, old.protocol):
        public_key = _fetch_public_key(ServerTarget(protocol=protocol, host=host), unreachable_hint=None)
    edited = ServerConfig(nickname=nickname, host=host, protocol=protocol, ecdsa_public_key=public_key)
    with cli.edit_config() as config:
        config.edit_server(server_name, edited)
    if nickname != old.nickname:
        click.echo(f"Changing nickname from {old.nickname} to {nickname}")
    if host != old.host:
        click.echo(f"Changing host from {old.host} to {host}")
    if protocol != old.protocol:
        click.echo(f"Changing protocol from {old.protocol} to {protocol}")


@server.command("list")
@json_option
@pass_cli
def list_servers(cli: CliContext, as_json: bool) -> None:
    """List the saved servers; *** marks the default."""
    config = cli.read_config()
    rows = _server_rows(config)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print_server_table(rows)


@server.command("remove")
@click.argument("server_name", metavar="SERVER")
@pass_cli
def remove(cli: CliContext, server_name: str) -> None:
    """Forget a saved server (by nickname, host or URL). A token saved for its host is kept."""
    with cli.edit_config() as config:
        was_default = config.default_server_name()
        removed = config.remove_server(server_name)
        lost_default = was_default is not None and config.default_server_name() is None
    click.echo(f"Removed server {removed.label}: {removed.url}")
    if lost_default:
        click.echo("There is no default server now; choose one with `spacetime server set-default NICK`.")


@server.command("set-default")
@click.argument("server_name", metavar="SERVER")
@pass_cli
def set_default(cli: CliContext, server_name: str) -> None:
    """Make a saved server (by nickname, host or URL) the default."""
    with cli.edit_config() as config:
        chosen = config.set_default_server(server_name)
    click.echo(f"Default server: {chosen.label} ({chosen.url})")


@server.command("ping")
@click.argument("server_name", metavar="[SERVER]", required=False)
@pass_cli
def ping(cli: CliContext, server_name: str | None) -> None:
    """Check that a server (default: the default server) is online."""
    from spacetimedb.cli import http

    target = cli.resolve_server(server_name)
    response = http.request("GET", target.endpoint(PING_PATH), timeout=10.0)
    http.raise_for_status(response, target)
    click.echo(f"Server is online: {target.url}")


@server.command("fingerprint")
@click.argument("server_name", metavar="[SERVER]", required=False)
@yes_option
@pass_cli
def fingerprint(cli: CliContext, server_name: str | None, assume_yes: bool) -> None:
    """Fetch a server's public key and save it; a changed key needs confirmation."""
    target = cli.resolve_server(server_name)
    public_key = _fetch_public_key(target, unreachable_hint=None)
    new_fingerprint = fingerprint_of(public_key)
    if not target.is_saved:
        click.echo(
            f"Fingerprint of {target.url}: {new_fingerprint} (not saved: the server is not in the config)"
        )
        return
    if target.ecdsa_public_key == public_key:
        click.echo(f"Fingerprint of {target.label} is unchanged: {new_fingerprint}")
        return
    if target.ecdsa_public_key is not None:
        click.echo(f"The fingerprint of {target.label} has changed!")
        click.echo(f"  saved: {fingerprint_of(target.ecdsa_public_key)}")
        click.echo(f"  now:   {new_fingerprint}")
        _confirm_or_abort("Save the new fingerprint?", assume_yes)
    with cli.edit_config() as config:
        config.set_server_fingerprint(target.nickname or target.host, public_key)
    click.echo(f"Saved fingerprint of {target.label}: {new_fingerprint}")


def fingerprint_of(public_key_pem: str) -> str:
    """``SHA256:<base64>`` of the key's DER bytes, the way ssh prints key fingerprints."""
    body = "".join(line for line in public_key_pem.strip().splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError:
        der = public_key_pem.encode()
    digest = base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _fetch_public_key(target: ServerTarget, *, unreachable_hint: str | None) -> str:
    from spacetimedb.cli import http  # only the commands that go to the network pay for http.client

    try:
        response = http.request("GET", target.endpoint(PUBLIC_KEY_PATH), timeout=10.0)
    except http.ServerUnreachableError as error:
        if unreachable_hint is not None:
            error.hint = unreachable_hint
        raise
    public_key = http.raise_for_status(response, target).text()
    if not public_key.lstrip().startswith(PEM_HEADER):
        raise CliError(f"GET {response.url} did not return a PEM public key")
    return public_key


def _add_hint(url: str, nickname: str) -> str:
    return (
        "is it running? start a local one with `spacetime start`, or save it without its public key: "
        f"`spacetime server add {url} --name {nickname} --no-fingerprint`"
    )


def _confirm_or_abort(question: str, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CliError(
            "refusing to change a saved fingerprint without confirmation", hint="pass --yes to accept it"
        )
    if not click.confirm(question, default=False):
        raise CliError("not saved: the fingerprint was not confirmed")


def _server_rows(config: Config) -> list[dict[str, Any]]:
    default_name = config.default_server_name()
    default = None if default_name is None else config.find_server(default_name)
    tokens = config.saved_tokens()
    rows = []
    for saved in config.servers():
        token = tokens.get(saved.host_key)
        rows.append(
            {
                "default": saved == default,
                "nickname": saved.nickname,
                "host": saved.host,
                "protocol": saved.protocol,
                "url": saved.url,
                "fingerprint": None
                if saved.ecdsa_public_key is None
                else fingerprint_of(saved.ecdsa_public_key),
                "identity": None if token is None else token.identity,
            }
        )
    return rows


def _print_server_table(rows: list[dict[str, Any]]) -> None:
    """Upstream's columns, in its order (scripts match `HOST PROTOCOL NICKNAME` lines); --json has the
    fingerprint and the saved identity too."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("DEFAULT", "HOSTNAME", "PROTOCOL", "NICKNAME"):
        table.add_column(column, no_wrap=True, justify="right" if column == "DEFAULT" else "left")
    for row in rows:
        table.add_row("***" if row["default"] else "", row["host"], row["protocol"], row["nickname"] or "")
    console = Console(soft_wrap=True) if sys.stdout.isatty() else Console(width=200, soft_wrap=True)
    console.print(table)


def _short(value: str | None, length: int) -> str:
    if value is None:
        return "-"
    return value if len(value) <= length else value[:length] + "…"
