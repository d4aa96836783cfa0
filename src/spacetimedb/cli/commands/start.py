"""``spacetime start``: run a standalone server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError

if TYPE_CHECKING:
    from spacetimedb.server.app import Server, ServerOptions

DEFAULT_LISTEN_ADDR = "127.0.0.1:3000"
DEFAULT_SERVER_URL = "http://127.0.0.1:3000"  # the `local` server every fresh config points at


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/spacetime/data``, i.e. ``~/.local/share/spacetime/data`` by default (``--root-dir
    DIR``: ``DIR/data``)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "spacetime" / "data"


def tunable_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The server's tunables (``spacetimedb.server.tunables``, shared with ``python -m spacetimedb.server``) as
    options of ``command``. This module is only imported to run ``start`` (commands load lazily)."""
    from spacetimedb.server.tunables import FLAG, TUNABLES

    for tunable in reversed(TUNABLES):
        if tunable.kind == FLAG:
            command = click.option(tunable.flag, is_flag=True, help=tunable.help)(command)
        elif tunable.repeatable:
            command = click.option(
                tunable.flag, multiple=True, metavar=tunable.shown_metavar, help=tunable.help
            )(command)
        else:
            shown = "" if tunable.shown_default is None else f" Default: {tunable.shown_default}."
            command = click.option(
                tunable.flag, default=None, metavar=tunable.shown_metavar, help=tunable.help + shown
            )(command)
    return command


@click.command("start")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A config file (TOML; keys are these options' names without dashes, see config.example.toml). "
    "Default: config.toml in the data directory, if there is one. Options given here win over it.",
)
@click.option(
    "--listen-addr",
    default=None,
    metavar="HOST:PORT",
    help=f"Where to accept HTTP and WebSocket connections; port 0 picks a free port. Default: {DEFAULT_LISTEN_ADDR}.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where databases live. Default: $XDG_DATA_HOME/spacetime/data (~/.local/share/spacetime/data).",
)
@click.option("--in-memory", is_flag=True, help="Keep everything in memory: nothing survives a restart.")
@tunable_options
@pass_cli
def start(
    cli: CliContext,
    /,
    config_file: Path | None,
    listen_addr: str | None,
    data_dir: Path | None,
    in_memory: bool,
    **tunables: Any,
) -> None:
    """Run a local server in the foreground; stop it with Ctrl-C (or SIGTERM).

    It prints `listening on http://HOST:PORT` once it accepts connections, then how modules are isolated: each
    database runs in its own sandboxed worker process.
    """
    from spacetimedb.server.config import ConfigError, configure_logging, parse_listen_addr, resolve
    from spacetimedb.server.tunables import server_options

    if in_memory and data_dir is not None:
        raise click.UsageError("--in-memory and --data-dir exclude each other")
    flags = {"listen_addr": listen_addr, "data_dir": data_dir, "in_memory": in_memory, **tunables}
    data_home = None if in_memory else (cli.root_dir / "data" if cli.root_dir else default_data_dir())
    try:
        # the CLI config's listen_addr, as upstream's start reads it (smoketest standalone/cli/server.rs)
        cli_listen_addr = cli.read_config().listen_addr() or DEFAULT_LISTEN_ADDR
        settings = resolve(flags, config_file, data_home, cli_listen_addr)
        options = server_options(settings.tunables)
        host, port = parse_listen_addr(settings.listen_addr)
    except ConfigError as exc:
        raise CliError(str(exc), hint="config.example.toml in the project lists every key") from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    directory = (
        None
        if settings.in_memory
        else (settings.data_dir or data_home or default_data_dir()).expanduser().absolute()
    )
    configure_logging(options.log_level, options.log_format)
    _run_server(directory, host, port, options)
    click.echo("server stopped", err=True)


def _run_server(directory: Path | None, host: str, port: int, options: ServerOptions) -> None:
    from spacetimedb.durability import DatabaseLockedError
    from spacetimedb.server.app import run
    from spacetimedb.server.isolation import IsolationRefused

    try:
        run(directory, host, port, options, on_ready=_announce)
    except IsolationRefused as refused:
        raise CliError(str(refused)) from None
    except DatabaseLockedError as locked:
        holder = f"pid {locked.holder_pid}" if locked.holder_pid is not None else "another process"
        raise CliError(
            f"the data directory {directory} is in use by another running server ({holder})",
            hint="stop that server first, or pass another --data-dir (or --in-memory)",
        ) from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CliError(
                f"cannot listen on {host}:{port}: the address is already in use",
                hint="is a server already running there? `spacetime server ping` checks; "
                "or pick another port with --listen-addr (port 0 picks a free one)",
            ) from None
        if error.errno == errno.EADDRNOTAVAIL or error.errno == errno.EACCES:
            raise CliError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        raise


def _announce(server: Server) -> None:
    bound_host, bound_port = server.bound or ("?", 0)
    url = f"http://{bound_host}:{bound_port}"
    where = "memory (nothing is kept after it stops)" if server.data_dir is None else str(server.data_dir)
    # `listening on URL` first and alone on its line: scripts and tests read the port from it.
    click.echo(f"listening on {url}")
    click.echo(f"data in {where}")
    if server.pg is not None and server.pg.bound is not None:
        pg_host, pg_port = server.pg.bound
        click.echo(f"PostgreSQL clients connect to {pg_host}:{pg_port} (the password is an auth token)")
    if url != DEFAULT_SERVER_URL:
        click.echo(f"other commands reach it with `-s {url}`")
    if server.connections is not None:
        click.echo(server.connections.limits.summary)
    if server.auth.oidc.summary:
        click.echo(server.auth.oidc.summary)
    if server.isolation is not None:
        click.echo(server.isolation.summary)
        if server.isolation.warning:
            click.secho(server.isolation.warning, err=True, fg="red", bold=True)
    click.echo("press Ctrl-C to stop")
    sys.stdout.flush()  # not click.get_text_stream, deprecated since click 8.5
