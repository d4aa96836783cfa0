"""``spacetime call``: call a reducer of a database with JSON arguments."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from spacetimedb.cli.commands._database import DatabaseClient, database_argument, open_database, summary
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import EXIT_USAGE, CliError
from spacetimedb.cli.options import server_option

# The server answers a reducer that raised with this status and the error text as the body.
REDUCER_FAILED = 530
OUT_OF_BUDGET = 402

T = TypeVar("T")


# ignore_unknown_options: a negative number such as -5 is an argument, not an unknown option.
@click.command("call", context_settings={"ignore_unknown_options": True})
@database_argument()
@click.argument("reducer")
@click.argument("arguments", nargs=-1, metavar="[ARG]...")
@server_option
@pass_cli
def call(
    cli: CliContext, database: str, reducer: str, arguments: tuple[str, ...], server: str | None
) -> None:
    """Call REDUCER of the database NAME.

    Each ARG is one JSON value, in the reducer's parameter order: quote strings for the shell and for JSON,
    e.g. spacetime call quickstart-chat send_message '"Hello!"'.
    """
    args = [_parse_argument(reducer, position, text) for position, text in enumerate(arguments, start=1)]
    client = open_database(cli, server, database)
    response = client.request("POST", f"/call/{reducer}", json=args)
    if response.ok:
        if response.body:  # a procedure's return value; reducers answer with an empty body
            click.echo(response.text())
        return
    text = summary(response.text())
    if response.status == 403:  # the module's client_connected reducer refused this caller
        raise CliError(f"database {client.shown} refused the call: {text}")
    client.raise_for_shared_status(response.status, text)
    if response.status == REDUCER_FAILED:
        raise CliError(f"reducer {reducer} failed: {text or 'no error message'}")
    if response.status == OUT_OF_BUDGET:
        raise CliError(f"reducer {reducer} was stopped: {text or 'it ran out of its budget'}")
    if response.status == 404:
        raise CliError(
            f"database {client.shown} has no reducer {reducer!r}", hint=_reducers_hint(client, reducer)
        )
    if response.status == 400:
        raise CliError(text, hint=_signature_hint(client, reducer))
    client.check(response)


def _parse_argument(reducer: str, position: int, text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as error:
        detail = getattr(error, "msg", str(error))
        raise CliError(
            f"argument {position} of {reducer} is not valid JSON: {text!r} ({detail})",
            hint="each ARG is one JSON value; a string needs JSON quotes inside shell quotes, e.g. '\"hello\"'",
            exit_code=EXIT_USAGE,
        ) from None


def _reducers_hint(client: DatabaseClient, reducer: str) -> str | None:
    import difflib

    from spacetimedb.cli.commands.describe import callable_reducers

    names = _with_schema(client, callable_reducers)
    if names is None:
        return None
    if not names:
        return "the module has no reducers that clients may call"
    close = difflib.get_close_matches(reducer, names, n=1)
    suggestion = f"did you mean {close[0]}? " if close else ""
    return f"{suggestion}its reducers: {', '.join(names)}"


def _signature_hint(client: DatabaseClient, reducer: str) -> str | None:
    from spacetimedb.cli.commands.describe import reducer_signature

    signature = _with_schema(client, lambda schema: reducer_signature(schema, reducer))
    return None if signature is None else f"the reducer's signature is {signature}"


def _with_schema(client: DatabaseClient, use: Callable[[dict[str, Any]], T]) -> T | None:
    """``use(schema)``, or None if the schema cannot be had: a hint is never worth a second error."""
    try:
        return use(client.schema())
    except CliError:
        return None
