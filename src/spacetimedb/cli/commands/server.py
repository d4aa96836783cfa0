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
@click.argument("url")
@click.option("--name", "nickname", required=True, metavar="NICK", help="Nickname for the server.")
@click.option("-d", "--default", "make_default", is_flag=True, help="Make it the default server.")
@click.option("--no-fingerprint", is_flag=True, help="Do not fetch and save the server's public key.")
@pass_cli
def add(cli: CliContext, url: str, nickname: str, make_default: bool, no_fingerprint: bool) -> None:
    """Save the server at URL (http[s]://host[:port]) under a nickname."""
    protocol, host = parse_server_url(url)
    new_server = ServerConfig(nickname=validate_nickname(nickname), host=host, protocol=protocol)
    if not no_fingerprint:
        cli.read_config().check_can_add(new_server)  # fail on a duplicate before the network round trip
        target = ServerTarget(protocol=protocol, host=host)
        public_key = _fetch_public_key(target, unreachable_hint=_add_hint(url, nickname))
        new_server = ServerConfig(
            nickname=nickname, host=host, protocol=protocol, ecdsa_public_key=public_key
        )
    with cli.edit_config() as config:
        config.add_server(new_server)
        if make_default:
            config.set_default_server(nickname)
    suffix = " (default)" if make_default else ""
    click.echo(f"Added server {nickname}: {new_server.url}{suffix}")
    if new_server.ecdsa_public_key is not None:
        click.echo(f"Fingerprint: {fingerprint_of(new_server.ecdsa_public_key)}")


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
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("DEFAULT", "NICKNAME", "HOST", "PROTOCOL", "FINGERPRINT", "IDENTITY"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(
            "***" if row["default"] else "",
            row["nickname"] or "",
            row["host"],
            row["protocol"],
            _short(row["fingerprint"], 20),
            _short(row["identity"], 16),
        )
    console = Console(soft_wrap=True) if sys.stdout.isatty() else Console(width=200, soft_wrap=True)
    console.print(table)


def _short(value: str | None, length: int) -> str:
    if value is None:
        return "-"
    return value if len(value) <= length else value[:length] + "…"
