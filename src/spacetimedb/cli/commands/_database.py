"""What the commands that talk to one database share: the NAME argument, requests, and their errors.

``spacetime call/sql/logs/describe/delete/subscribe/publish`` all address ``/v1/database/{NAME}/...`` on one
server as one identity. :func:`open_database` resolves ``-s/--server`` and the token once;
:meth:`DatabaseClient.check` turns the replies every route shares (no such database, not the owner, a rejected
token) into one clear line naming the database and the server, and leaves the rest to
:func:`spacetimedb.cli.http.raise_for_status`.

Imports only the CLI core and the stdlib HTTP helper, so the commands stay quick to start.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import click

from spacetimedb.cli import http
from spacetimedb.cli.context import CliContext
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.identity import claimed_identity, request_new_identity
from spacetimedb.cli.servers import ServerTarget

# SpacetimeDB's database-name rule, and a database identity as 64 hex digits.
DATABASE_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
IDENTITY_HEX = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_MAX_DETAIL = 200

F = TypeVar("F", bound=Callable[..., Any])


def is_identity(text: str) -> bool:
    return IDENTITY_HEX.fullmatch(text) is not None


def validate_database(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback for NAME arguments: a database name or identity, checked before any network call."""
    if value is None or DATABASE_NAME.fullmatch(value):
        return value
    if is_identity(value):
        return value.removeprefix("0x").lower()  # the form the server's routes expect
    message = (
        f"{value!r} is not a database name (lower-case letters and digits, single dashes between them, "
        "e.g. quickstart-chat) nor a 64-hex-digit identity"
    )
    if any(p.name == "reducer" for p in ctx.command.params) and value.isidentifier():
        # `spacetime call set_name Alice`: the reducer given where the database belongs
        message += f"; the database comes first: {ctx.command_path} NAME {value} [ARG]..."
    raise click.BadParameter(message, ctx, param)


def database_argument(required: bool = True) -> Callable[[F], F]:
    """The ``NAME`` argument: the database's name or identity."""
    return click.argument(
        "database", metavar="NAME" if required else "[NAME]", required=required, callback=validate_database
    )


def summary(text: str) -> str:
    """A server's reply text as one line of bounded length."""
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."


@dataclass(frozen=True)
class DatabaseClient:
    """One database on one server, addressed as one identity (the token saved for that server)."""

    target: ServerTarget
    token: str
    database: str  # the name or identity the user gave

    @property
    def shown(self) -> str:
        """How messages name the database: ``'chat' on local (http://127.0.0.1:3000)``."""
        return f"{self.database!r} on {self.target.display}"

    def url(self, suffix: str = "", query: Mapping[str, str] | None = None) -> str:
        path = "/v1/database" + (f"/{quote(self.database, safe='')}" if self.database else "") + suffix
        if query:
            path += "?" + urlencode(query)
        return self.target.endpoint(path)

    def request(
        self,
        method: str,
        suffix: str = "",
        *,
        query: Mapping[str, str] | None = None,
        timeout: float = http.DEFAULT_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> http.HttpResponse:
        return http.request(method, self.url(suffix, query), token=self.token, timeout=timeout, **kwargs)

    def check(self, response: http.HttpResponse) -> http.HttpResponse:
        """Return a 2xx response; raise one clear line for anything else."""
        if response.ok:
            return response
        self.raise_for_shared_status(response.status, response.text())
        return http.raise_for_status(response, self.target)  # every other status, generically

    def raise_for_shared_status(self, status: int, text: str) -> None:
        """Raise for the replies every database route shares (no such database, not the owner, a rejected
        token); return for any other status, which the command explains in its own terms."""
        if status == 404 and text.startswith("No such database"):
            raise self.not_found()
        if status == 403 and text.startswith("Database is locked"):
            raise CliError(
                f"{text.removesuffix(' Run `spacetime unlock` first.')} ({self.shown})",
                hint=f"unlock it first: `spacetime unlock {self.database} -s {self.target.label}`",
            )
        if status == 403:
            raise self.forbidden(text)
        if status == 401 or (status == 400 and text.startswith("Authorization")):
            raise CliError(
                f"the server at {self.target.url} rejected the saved token ({status}): {summary(text)}",
                hint=f"forget it with `spacetime logout -s {self.target.label}` and retry",
            )

    def not_found(self) -> CliError:
        return CliError(
            f"No such database {self.shown}",  # upstream's words, which scripts grep for
            hint=f"`spacetime list -s {self.target.label}` lists your databases; "
            f"create it with `spacetime publish {self.database} -p MODULE_PATH -s {self.target.label}`",
        )

    def forbidden(self, detail: str) -> CliError:
        return CliError(
            f"not authorised on database {self.shown}: {summary(detail) or 'only its owner may do this'}",
            hint=f"only the database's owner may do this; `spacetime login show -s {self.target.label}` "
            "shows the identity you are using",
        )

    def schema(self, version: int = 9) -> dict[str, Any]:
        """The module's RawModuleDef v9 (or ``version``) as JSON (``GET /schema?version=9``)."""
        response = self.check(self.request("GET", "/schema", query={"version": str(version)}))
        payload = response.json()
        if not isinstance(payload, dict):
            raise CliError(f"GET {response.url} did not return a module definition")
        return payload


def open_database(
    cli: CliContext, server: str | None, database: str, anonymous: bool = False
) -> DatabaseClient:
    """Resolve ``-s/--server`` and the identity's token (obtaining one if none is saved yet); ``anonymous``:
    a new identity's token, used for this command only (as upstream's ``--anonymous``)."""
    target = cli.resolve_server(server)
    token = request_new_identity(target).token if anonymous else cli.token_for(target)
    return DatabaseClient(target=target, token=token, database=database)


def identity_of(cli: CliContext, target: ServerTarget, token: str) -> str:
    """The hex identity ``token`` stands for: as saved with it, else its ``hex_identity`` claim."""
    saved = cli.saved_token(target)
    if saved is not None and saved.token == token and saved.identity:
        return saved.identity
    identity = claimed_identity(token)
    if identity is None:
        raise CliError(
            f"cannot tell which identity the token saved for {target.host_key} stands for",
            hint=f"get a fresh one with `spacetime logout -s {target.label}` and retry",
        )
    return identity


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A psql-style table: `` a | b ``, a dashed rule with ``+``, no outer border (as ``spacetime sql``)."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "|".join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), "+".join("-" * (w + 2) for w in widths), *map(line, rows)])


def ask(question: str, assume_yes: bool) -> bool | None:
    """Ask a yes/no question and read the answer from standard input, a terminal or not, as upstream's CLI does
    (``y`` or ``yes`` confirms). ``assume_yes`` skips the question, saying so. None: nothing to read."""
    if assume_yes:
        click.echo("Skipping confirmation due to --yes")
        return True
    click.echo(f"{question} [y/N] ", nl=False)
    answer = sys.stdin.readline()  # not click.get_text_stream, deprecated since click 8.5
    if not answer:
        click.echo()
        return None
    return answer.strip().lower() in ("y", "yes")


def confirm(question: str, assume_yes: bool, *, refusal: str, hint: str) -> None:
    """:func:`ask`, raising ``refusal`` unless the answer is yes."""
    answer = ask(question, assume_yes)
    if answer is None:
        raise CliError(f"{refusal} without confirmation", hint=hint)
    if not answer:
        raise CliError(f"{refusal}: not confirmed")
