"""``spacetime sql``: run SQL against a database, once or in an interactive prompt.

Results print as psql-style tables (``spacetimedb.sql.render_sql_json``, the same rendering as SpacetimeDB's
CLI) or, with ``--json``, as the server's JSON. The prompt uses the stdlib ``readline`` (no extra dependency,
nothing to import until ``--interactive``), with its history in the config directory.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from spacetimedb.cli.commands._database import DatabaseClient, database_argument, open_database, summary
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import ConfirmedCommand, anonymous_option, json_option, server_option

HISTORY_FILE_NAME = "sql_history"
HISTORY_LENGTH = 1000
QUIT_COMMANDS = ("\\q", "quit", "exit")
REPL_HELP = """\
Type a SQL statement and press Enter to run it; several statements may be separated by ';'.
  \\dt         list the tables
  \\h          this help
  \\q          quit (also Ctrl-D)"""


@click.command("sql", cls=ConfirmedCommand)
@database_argument()
@click.argument("query", required=False)
@click.option("--interactive", "-i", is_flag=True, help="Open a prompt for SQL statements instead of QUERY.")
@click.option(
    "--confirmed",
    is_flag=True,
    help="Answer only once the statements' changes are durable on the server (upstream's `--confirmed true` also works).",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="OFFSET|TIME",
    default=None,
    help="Read the database as it was right after the transaction OFFSET, or the last one committed at or "
    "before TIME (RFC 3339, e.g. 2026-12-06T21:18:13Z); owner only, reads only. `spacetime log` lists offsets.",
)
@json_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Upstream's spelling: --format json is --json (the server's JSON reply, as it is).",
)
@anonymous_option
@server_option
@pass_cli
def sql(
    cli: CliContext,
    database: str,
    query: str | None,
    interactive: bool,
    confirmed: bool,
    as_of: str | None,
    as_json: bool,
    output_format: str | None,
    server: str | None,
    anonymous: bool,
) -> None:
    """Run the SQL QUERY (';'-separated statements) on the database NAME, or open a prompt with --interactive.

    Everyone may read public tables; private tables and changes (INSERT, UPDATE, DELETE) need the owner.
    """
    if interactive == (query is not None):
        raise click.UsageError("give either a QUERY or --interactive")
    if output_format is not None:
        if as_json and output_format != "json":
            raise click.UsageError("--json and --format text contradict each other")
        as_json = output_format == "json"
    if as_of is not None and (interactive or confirmed):
        raise click.UsageError("--as-of reads one QUERY of the past: not with --interactive or --confirmed")
    client = open_database(cli, server, database, anonymous)
    if as_of is not None:
        assert query is not None
        results, cost = _run_as_of(client, query, as_of)
        click.echo(cost, err=True)
        click.echo(json.dumps(results) if as_json else _render(results, with_stats=False))
        return
    if interactive:
        _repl(client, cli.config_path.parent / HISTORY_FILE_NAME, confirmed, as_json)
        return
    assert query is not None
    results = _run(client, query, confirmed)
    click.echo(json.dumps(results) if as_json else _render(results, with_stats=False))


def _run(client: DatabaseClient, query: str, confirmed: bool) -> list[dict[str, Any]]:
    response = client.request(
        "POST",
        "/sql",
        query={"confirmed": "true"} if confirmed else None,
        body=query.encode("utf-8"),
        content_type="text/plain; charset=utf-8",
    )
    client.raise_for_shared_status(response.status, response.text())
    if response.status == 400:  # the statement is wrong or not allowed: the server's text says which
        raise CliError(summary(response.text()) or "the server refused the statement")
    results = client.check(response).json()
    if not isinstance(results, list):
        raise CliError(f"POST {response.url} did not return a list of results")
    return results


def _run_as_of(client: DatabaseClient, query: str, as_of: str) -> tuple[list[dict[str, Any]], str]:
    """The results of ``query`` on the past state, and a line saying what state and what it cost."""
    response = client.request(
        "POST",
        "/sql",
        query={"as_of": as_of},
        body=query.encode("utf-8"),
        content_type="text/plain; charset=utf-8",
    )
    client.raise_for_shared_status(response.status, response.text())
    if response.status == 400:
        raise CliError(summary(response.text()) or "the server refused the query")
    results = client.check(response).json()
    headers = response.headers
    snapshot = headers.get("spacetime-as-of-snapshot-offset") or "none"
    cost = (
        f"as of transaction {headers.get('spacetime-as-of-offset')}: snapshot {snapshot} + "
        f"{headers.get('spacetime-as-of-replayed')} transactions replayed in "
        f"{int(headers.get('spacetime-as-of-micros', '0')) / 1000:.1f} ms"
    )
    return results, cost


def _render(results: list[dict[str, Any]], *, with_stats: bool) -> str:
    from spacetimedb.sql.format import render_sql_json

    # A statement without columns (INSERT, UPDATE, DELETE, SET) has no table to show: its counts say what it did.
    return "\n\n".join(
        render_sql_json([result], with_stats=with_stats or not result.get("schema", {}).get("elements"))
        for result in results
    )


# ---- the interactive prompt -----------------------------------------------------------------------------------------


def _repl(client: DatabaseClient, history_path: Path, confirmed: bool, as_json: bool) -> None:
    client.check(client.request("GET", "/identity"))  # a missing database fails now, not at every statement
    interactive = sys.stdin.isatty()
    readline = _setup_readline(history_path) if interactive else None
    prompt = f"{client.database}> " if interactive else ""
    if interactive:
        click.echo(f"Connected to {client.shown}. Type \\h for help, \\q to quit.")
    try:
        while True:
            try:
                line = input(prompt).strip()
            except EOFError:
                break
            except KeyboardInterrupt:  # Ctrl-C drops the line being typed, like psql
                click.echo()
                continue
            if line in QUIT_COMMANDS:
                break
            _repl_line(client, line, confirmed, as_json)
    finally:
        if readline is not None:
            _save_history(readline, history_path)
    if interactive:
        click.echo()


def _repl_line(client: DatabaseClient, line: str, confirmed: bool, as_json: bool) -> None:
    if not line:
        return
    if line in ("\\h", "\\?", "help"):
        click.echo(REPL_HELP)
        return
    if line == "\\dt":
        line = "SELECT table_name, table_access FROM st_table WHERE table_type = 'user'"
    started = time.perf_counter()
    try:
        results = _run(client, line, confirmed)
    except CliError as error:  # a wrong statement must not end the session
        click.echo(f"error: {error.message}", err=True)
        return
    if as_json:
        click.echo(json.dumps(results))
        return
    click.echo(_render(results, with_stats=True))
    click.echo(f"Roundtrip time: {_duration(time.perf_counter() - started)}")


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.2f}ms" if seconds < 1 else f"{seconds:.2f}s"


def _setup_readline(history_path: Path) -> Any:
    try:
        import readline
    except ImportError:  # not on every platform; the prompt still works, without history
        return None
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(history_path)
    except (FileNotFoundError, OSError):
        pass
    return readline


def _save_history(readline: Any, history_path: Path) -> None:
    try:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(history_path)
        history_path.chmod(0o600)  # queries can hold data worth keeping private
    except OSError as error:
        click.echo(f"warning: could not save the SQL history to {history_path}: {error.strerror}", err=True)
