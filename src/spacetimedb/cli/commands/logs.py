"""``spacetime logs``: print (and follow) a database's module log.

The server streams ``GET /v1/database/NAME/logs`` as JSON lines (protocol-reference section 1.3):
``{"level", "ts" (µs since the epoch), "target"?, "filename"?, "line_number"?, "function"?, "message",
"trace"?}``. Each record is printed as one readable line -- time, level, function, place, message -- or
passed through untouched with ``--json``. The response is read as it arrives, so ``-f`` shows new lines at once.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import click

from spacetimedb.cli import http as cli_http
from spacetimedb.cli.commands._database import DatabaseClient, database_argument, open_database
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import anonymous_option, json_option, server_option

SYSTEM = "__spacetimedb__"  # the target / filename / function of lines the server writes itself
DEFAULT_FOLLOW_LINES = 10
LEVELS = ("trace", "debug", "info", "warn", "error", "panic")  # least to most severe, as upstream
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LEVEL_COLORS: dict[str, dict[str, Any]] = {
    "Error": {"fg": "red"},
    "Warn": {"fg": "yellow"},
    "Info": {"fg": "blue"},
    "Debug": {"dim": True, "bold": True},
    "Trace": {"dim": True},
    "Panic": {"fg": "bright_red", "bold": True},
}


@click.command("logs")
@database_argument()
@click.option(
    "-n",
    "--num-lines",
    type=click.IntRange(min=0),
    default=None,
    help=f"Print only the last LINES records (all by default; {DEFAULT_FOLLOW_LINES} with -f).",
    metavar="LINES",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records until Ctrl-C.")
@click.option(
    "--level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default=None,
    help="Show only records at this level or more severe (trace < debug < info < warn < error < panic).",
)
@click.option("--level-exact", is_flag=True, help="With --level: show only records at exactly that level.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    help="text (the default): one readable line per record; json: each record as the server sends it (as --json).",
)
@json_option
@anonymous_option
@server_option
@pass_cli
def logs(
    cli: CliContext,
    database: str,
    num_lines: int | None,
    follow: bool,
    level: str | None,
    level_exact: bool,
    output_format: str,
    as_json: bool,
    server: str | None,
    anonymous: bool,
) -> None:
    """Print the module log of the database NAME (only its owner may read it).

    As upstream, -n counts the records the server sends, before --level filters them."""
    if level_exact and level is None:
        raise click.UsageError("--level-exact needs --level")
    if follow and num_lines is None:
        num_lines = DEFAULT_FOLLOW_LINES
    client = open_database(cli, server, database, anonymous)
    query = {"follow": "true" if follow else "false"}
    if num_lines is not None:
        query["num_lines"] = str(num_lines)
    as_json = as_json or output_format.lower() == "json"
    color = sys.stdout.isatty()
    for line in _stream_lines(client, client.url("/logs", query), follow):
        if level is None or shown_at(line, level.lower(), level_exact):
            click.echo(line if as_json else format_record(line, color=color))


def shown_at(line: str, level: str, exact: bool) -> bool:
    """Whether the record ``line`` passes ``--level level`` (``--level-exact`` with ``exact``). A line that is not
    a record (or names no level upstream knows) is shown: hiding what cannot be judged could hide a problem."""
    try:
        record = json.loads(line)
        rank = LEVELS.index(str(record["level"]).lower())
    except (ValueError, KeyError, TypeError):
        return True
    wanted = LEVELS.index(level)
    return rank == wanted if exact else rank >= wanted


def _stream_lines(client: DatabaseClient, url: str, follow: bool) -> Iterator[str]:
    """The response's lines as they arrive; every failure becomes the usual one-line error."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=cli_http.DEFAULT_TIMEOUT_SECONDS)
    headers = {"User-Agent": cli_http.USER_AGENT, "Authorization": f"Bearer {client.token}"}
    try:
        try:
            connection.request("GET", f"{parts.path}?{parts.query}", headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            raise _unreachable(client, error) from None
        if response.status != 200:
            client.check(_whole(response, url))
        if follow and connection.sock is not None:
            connection.sock.settimeout(None)  # a quiet module writes nothing for a long time
        try:
            for raw in response:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line:
                    yield line
        except (OSError, http.client.HTTPException) as error:
            raise CliError(f"the log stream from {client.target.url} broke off: {error}") from None
    finally:
        connection.close()


def _whole(response: http.client.HTTPResponse, url: str) -> cli_http.HttpResponse:
    return cli_http.HttpResponse(
        method="GET", url=url, status=response.status, reason=response.reason, body=response.read()
    )


def _unreachable(client: DatabaseClient, error: BaseException) -> CliError:
    if isinstance(error, socket.timeout | TimeoutError):
        reason = "timed out"
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror.lower()
    else:
        reason = str(error) or type(error).__name__
    return cli_http.ServerUnreachableError(
        f"cannot reach the server at {client.url('/logs')}: {reason}",
        hint="is it running? start a local one with `spacetime start`",
    )


def format_record(line: str, *, color: bool = False) -> str:
    """One log record as ``TIME LEVEL: function file:line: message`` (and its trace, for a panic)."""
    try:
        record = json.loads(line)
    except ValueError:
        return line  # not a record: show it as it is rather than hide it
    if not isinstance(record, dict):
        return line
    level = str(record.get("level", "?"))
    parts = []
    if isinstance(record.get("ts"), int):
        parts.append(_style(_timestamp(record["ts"]), color, dim=True))
    parts.append(_style(f"{level.upper():>5}:", color, **LEVEL_COLORS.get(level, {})))
    place = _place(record)
    if place:
        parts.append(_style(place + ":", color, dim=True))
    parts.append(str(record.get("message", "")))
    text = " ".join(parts)
    for frame in record.get("trace") or []:
        if isinstance(frame, dict):
            module, function = frame.get("module_name"), frame.get("func_name")
            text += "\n    in " + " :: ".join(str(p) for p in (module, function) if p)
    return text


def _place(record: dict[str, Any]) -> str:
    """``function file.py:12`` without the server's own placeholder names."""
    pieces = []
    function = record.get("function")
    if function and function != SYSTEM:
        pieces.append(str(function))
    filename = record.get("filename")
    if filename and filename != SYSTEM:
        line_number = record.get("line_number")
        pieces.append(f"{filename}:{line_number}" if line_number is not None else str(filename))
    return " ".join(pieces)


def _timestamp(micros: int) -> str:
    moment = _EPOCH + dt.timedelta(microseconds=micros)  # exact, unlike a float of seconds
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _style(text: str, color: bool, **style: Any) -> str:
    return click.style(text, **style) if color else text
