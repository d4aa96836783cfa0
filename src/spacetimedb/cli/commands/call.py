"""``spacetime call``: call a reducer of a database with JSON arguments."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from spacetimedb.cli.commands._database import (
    IDENTITY_HEX,
    DatabaseClient,
    database_argument,
    open_database,
    summary,
)
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import EXIT_USAGE, CliError
from spacetimedb.cli.options import anonymous_option, server_option

# The server answers a reducer that raised with this status and the error text as the body.
REDUCER_FAILED = 530
OUT_OF_BUDGET = 402

T = TypeVar("T")


# ignore_unknown_options: a negative number such as -5 is an argument, not an unknown option.
@click.command("call", context_settings={"ignore_unknown_options": True})
@database_argument()
@click.argument("reducer")
@click.argument("arguments", nargs=-1, metavar="[ARG]...")
@anonymous_option
@server_option
@pass_cli
def call(
    cli: CliContext,
    database: str,
    reducer: str,
    arguments: tuple[str, ...],
    server: str | None,
    anonymous: bool,
) -> None:
    """Call REDUCER (or a procedure) of the database NAME; a procedure's return value is printed as JSON.

    Each ARG is one JSON value, in the reducer's parameter order. As with SpacetimeDB's CLI, an argument for a
    string parameter may also be a bare word: spacetime call quickstart-chat set_name Alice (a JSON string
    literal such as '"Alice"' works too).
    """
    client = open_database(cli, server, database, anonymous)
    args = _arguments(client, reducer, arguments)
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
        raise _no_such_reducer(client, reducer)
    if response.status == 400:
        raise CliError(text, hint=_signature_hint(client, reducer))
    client.check(response)


def _arguments(client: DatabaseClient, reducer: str, texts: tuple[str, ...]) -> list[object]:
    """The JSON values of ``texts``; which parameters are strings or identities comes from the module's schema
    (unknown when the schema cannot be had: then every argument must be JSON, and the server's answer says what
    is wrong)."""
    if not texts:
        return []
    kinds = _with_schema(client, lambda schema: _parameter_kinds(schema, reducer)) or []
    return [
        _lenient_argument(kinds[position - 1], reducer, position, text)
        if position <= len(kinds)
        else _parse_argument(reducer, position, text)
        for position, text in enumerate(texts, start=1)
    ]


def _parameter_kinds(raw: dict[str, Any], reducer: str) -> list[str | None]:
    """Per parameter: "string", "identity" (the types that take bare words), or None."""
    from spacetimedb.cli.commands.describe import Schema
    from spacetimedb.sats import IDENTITY, STRING

    schema = Schema(raw)
    found = schema.reducer(reducer) or schema.procedure(reducer)
    names = {STRING: "string", IDENTITY: "identity"}
    return [] if found is None else [names.get(element.type) for element in schema.params(found).elements]


def _lenient_argument(kind: str | None, reducer: str, position: int, text: str) -> object:
    if kind == "string":
        return _string_argument(text)
    if kind == "identity" and IDENTITY_HEX.fullmatch(text.strip('"')):
        # upstream's CLI takes an identity as bare hex, with or without 0x (crates/cli/src/subcommands/call.rs)
        return ["0x" + text.strip('"').removeprefix("0x")]
    return _parse_argument(reducer, position, text)


def _string_argument(text: str) -> str:
    """A JSON string literal is that string; anything else (``Alice``, ``123``) is the text itself, as upstream's
    CLI takes an argument for a string parameter."""
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, str):
            return value
    return text


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


LISTED_AT_MOST = 10  # upstream lists this many reducers (and procedures) when none is close to the name


def _no_such_reducer(client: DatabaseClient, name: str) -> CliError:
    """Upstream's message (crates/cli/src/subcommands/call.rs, no_such_reducer_or_procedure; its smoketest
    cluster/call.rs test_call_errors asserts it): the name, the database as given and its identity, then the
    similar reducer or procedure, or else the existing ones, closest first."""
    identity = client.check(client.request("GET", "/identity")).text().strip()
    message = (
        f"No such reducer OR procedure `{name}` for database `{client.database}` "
        f"resolving to identity `{identity}`."
    )
    callables = _with_schema(client, _callable_names)
    if callables is None:
        return CliError(message)
    reducers, procedures = callables
    return CliError(
        message,
        details=_similar_names(name, reducers, procedures),
        hint=f"`spacetime describe {client.database} -s {client.target.label}` shows their signatures",
    )


def _callable_names(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    from spacetimedb.cli.commands.describe import Schema, callable_reducers

    return callable_reducers(raw), [str(p["name"]) for p in Schema(raw).procedures()]


def _similar_names(name: str, reducers: list[str], procedures: list[str]) -> tuple[str, ...]:
    from spacetimedb.cli.similar import best_match, by_closeness

    for kind, names in (("reducer", reducers), ("procedure", procedures)):
        match = best_match(names, name)
        if match is not None:
            return ("", f"A {kind} with a similar name exists: `{match}`")
    lines: list[str] = []
    for kind, names in (("reducer", reducers), ("procedure", procedures)):
        lines.append("")
        if not names:
            lines.append(f"The database has no {kind}s.")
            continue
        lines.append(f"Here are some existing {kind}s:")
        lines += [f"- {candidate}" for candidate in by_closeness(names, name)[:LISTED_AT_MOST]]
        hidden = len(names) - LISTED_AT_MOST
        if hidden > 0:
            lines.append(f"... ({hidden} {kind}{'' if hidden == 1 else 's'} not shown)")
    return tuple(lines)


def _signature_hint(client: DatabaseClient, reducer: str) -> str | None:
    from spacetimedb.cli.commands.describe import callable_reducers, reducer_signature

    def signature_of(schema: dict[str, Any]) -> str | None:
        # a lifecycle reducer (`init`, ...) is refused whatever its arguments: its signature would not help
        if reducer not in callable_reducers(schema):
            return None
        return reducer_signature(schema, reducer)

    signature = _with_schema(client, signature_of)
    return None if signature is None else f"the reducer's signature is {signature}"


def _with_schema(client: DatabaseClient, use: Callable[[dict[str, Any]], T]) -> T | None:
    """``use(schema)``, or None if the schema cannot be had: a hint is never worth a second error."""
    try:
        return use(client.schema())
    except CliError:
        return None
