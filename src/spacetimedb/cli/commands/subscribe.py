"""``spacetime subscribe``: subscribe to SQL queries over the WebSocket and print each update as a JSON line.

It speaks the ``v1.json.spacetimedb`` protocol (protocol-reference section 6): send ``Subscribe``, receive
``InitialSubscription``, then one ``TransactionUpdateLight`` per transaction that changed the subscribed rows.
Each printed line is ``{"<table>": {"deletes": [row, ...], "inserts": [row, ...]}}`` with rows as typed JSON
objects keyed by column name, as in SpacetimeDB's CLI.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from spacetimedb.cli.commands._database import (
    DatabaseClient,
    database_argument,
    open_database,
    summary,
)
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import ConfirmedCommand, anonymous_option, server_option

if TYPE_CHECKING:
    from aiohttp import ClientWebSocketResponse

PROTOCOL = "v1.json.spacetimedb"
CONNECT_TIMEOUT_SECONDS = 30.0


@click.command("subscribe", cls=ConfirmedCommand)
@database_argument()
@click.argument("queries", nargs=-1, required=True, metavar="QUERY...")
@click.option(
    "-n",
    "--num-updates",
    type=click.IntRange(min=0),
    default=None,
    help="Exit after this many updates (not counting the initial one).",
)
@click.option(
    "-t",
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Exit after this many seconds; an error if -n updates have not arrived by then.",
)
@click.option("--print-initial-update", is_flag=True, help="Also print the rows the queries match at first.")
@click.option(
    "--confirmed",
    is_flag=True,
    help="Receive only updates that are durable on the server (upstream's `--confirmed true` also works).",
)
@anonymous_option
@server_option
@pass_cli
def subscribe(
    cli: CliContext,
    database: str,
    queries: tuple[str, ...],
    num_updates: int | None,
    timeout: float | None,
    print_initial_update: bool,
    confirmed: bool,
    server: str | None,
    anonymous: bool,
) -> None:
    """Subscribe to the QUERY... on the database NAME and print every update as one JSON line.

    Runs until -n updates have arrived, -t seconds have passed, the server closes the connection, or Ctrl-C.
    """
    import asyncio

    client = open_database(cli, server, database, anonymous)
    watch = Watch(list(queries), num_updates, timeout, print_initial_update, confirmed)
    asyncio.run(watch.run(client))


@dataclass
class Watch:
    queries: list[str]
    num_updates: int | None
    timeout: float | None
    print_initial_update: bool
    confirmed: bool
    received: int = 0
    subscribed: bool = False  # the initial rows arrived

    async def run(self, client: DatabaseClient) -> None:
        import asyncio

        try:
            async with asyncio.timeout(self.timeout):
                await self._connect_and_watch(client)
        except TimeoutError:
            if self.num_updates is not None and self.received < self.num_updates:
                raise CliError(
                    f"timed out after {self.timeout:g}s having received {self.received} of "
                    f"{self.num_updates} updates"
                ) from None

    async def _connect_and_watch(self, client: DatabaseClient) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            ws = await _connect(session, client, self.confirmed)
            async with ws:
                await ws.send_str(json.dumps({"Subscribe": {"query_strings": self.queries, "request_id": 0}}))
                if self.num_updates == 0:
                    await self._next_update(ws, initial=True)
                    return
                while await self._next_update(ws, initial=False):
                    if self.num_updates is not None and self.received >= self.num_updates:
                        return

    async def _next_update(self, ws: ClientWebSocketResponse, *, initial: bool) -> bool:
        """Wait for the initial rows (when ``initial``) or for the next update; False once the server closed."""
        import aiohttp

        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                self._closed(
                    ws.close_code, message.extra if message.type == aiohttp.WSMsgType.CLOSE else None
                )
                return False
            if message.type == aiohttp.WSMsgType.ERROR:
                raise CliError(f"the subscription's connection failed: {ws.exception() or message.data}")
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            kind, body = _decode(message.data)
            if kind == "SubscriptionError":
                raise CliError(f"the subscription failed: {summary(str(body.get('error', body)))}")
            if kind == "InitialSubscription":
                self.subscribed = True
                if self.print_initial_update:
                    _print_update(body.get("database_update", {}))
                if initial:
                    return True
                continue
            update = _committed_update(kind, body)
            if update is not None and update.get("tables"):
                _print_update(update)
                self.received += 1
                return True

    def _closed(self, code: int | None, reason: str | None) -> None:
        why = f" ({code}{': ' + reason if reason else ''})" if code else ""
        if not self.subscribed:
            # the module's client_connected refused us, or the server went away first: upstream's subscribe fails
            # too (smoketest cluster/client_connection_errors.rs, test_client_connected_error_rejects_connection)
            raise CliError(f"the server closed the connection before the subscription began{why}")
        if self.num_updates is not None and self.received < self.num_updates:
            raise CliError(
                f"the server closed the subscription{why} after {self.received} of {self.num_updates} updates"
            )
        click.echo(f"disconnected by the server{why}", err=True)


async def _connect(session: Any, client: DatabaseClient, confirmed: bool) -> ClientWebSocketResponse:
    import aiohttp

    url = client.url("/subscribe", {"compression": "None", "confirmed": "true" if confirmed else "false"})
    ws_url = "ws" + url.removeprefix("http")  # http -> ws, https -> wss
    try:
        return await session.ws_connect(  # type: ignore[no-any-return]  # aiohttp's ws_connect context manager is typed loosely
            ws_url,
            protocols=(PROTOCOL,),
            headers={"Authorization": f"Bearer {client.token}"},
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
            max_msg_size=0,  # the initial rows can be large; the server bounds its own messages
            autoping=True,
        )
    except aiohttp.WSServerHandshakeError as error:
        detail = _refusal_detail(client, url)
        client.raise_for_shared_status(error.status, detail)
        raise CliError(
            f"the server refused the subscription to {client.shown}: {error.status} {detail or error.message}"
        ) from None
    except (aiohttp.ClientConnectionError, OSError) as error:
        raise CliError(
            f"cannot reach the server at {client.target.url}: {error}",
            hint="is it running? start a local one with `spacetime start`",
        ) from None


def _refusal_detail(client: DatabaseClient, url: str) -> str:
    """Why the server refused the upgrade. aiohttp does not keep the body of a refused handshake, but the
    route checks the database and the token before it looks at the upgrade, so a plain GET gets the reason."""
    from spacetimedb.cli import http

    try:
        response = http.request("GET", url, token=client.token, timeout=CONNECT_TIMEOUT_SECONDS)
    except CliError:
        return ""
    return summary(response.text()) if not response.ok else ""


def _decode(text: str) -> tuple[str, dict[str, Any]]:
    try:
        message = json.loads(text)
        ((kind, body),) = message.items()
    except (ValueError, AttributeError):
        raise CliError(f"the server sent a message that is not v1 JSON: {summary(text)}") from None
    return str(kind), body if isinstance(body, dict) else {}


def _committed_update(kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The DatabaseUpdate of a transaction message, or None for anything else (e.g. a failed transaction)."""
    if kind == "TransactionUpdateLight":
        update = body.get("update")
        return update if isinstance(update, dict) else None
    if kind == "TransactionUpdate":
        status = body.get("status")
        committed = status.get("Committed") if isinstance(status, dict) else None
        return committed if isinstance(committed, dict) else None
    return None


def _print_update(update: dict[str, Any]) -> None:
    tables: dict[str, dict[str, list[Any]]] = {}
    for table in update.get("tables", []):
        entry = tables.setdefault(str(table.get("table_name")), {"deletes": [], "inserts": []})
        for query_update in table.get("updates", []):
            entry["deletes"] += _rows(query_update.get("deletes", []))
            entry["inserts"] += _rows(query_update.get("inserts", []))
    click.echo(json.dumps(tables))  # click.echo flushes: a reader of the pipe sees each update at once


def _rows(rows: Sequence[Any]) -> list[Any]:
    # v1 JSON carries each row as a string holding the row's JSON.
    return [json.loads(row) if isinstance(row, str) else row for row in rows]
