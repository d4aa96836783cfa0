"""A terminal client for the quickstart chat module, built on the Python client SDK.

    python examples/chat/client.py [--server NICKNAME_OR_URL] [--database quickstart-chat]

It connects where ``spacetime call`` would: ``--server`` (a URL, or a server saved with ``spacetime server add``),
else ``$SPACETIMEDB_URI``, else the CLI's default server (``spacetime server set-default``; ``local``,
http://127.0.0.1:3000, on a fresh machine).

Type a line to send it; ``/name NAME`` sets your name; ``/quit`` (or end of input) leaves. Your identity is kept
in a token file (``~/.spacetimedb_client_credentials/<database>``), so you are the same user next time.

Without generated bindings the SDK reads the module's schema from the server. With them (``spacetime generate
--lang python --out-dir examples/chat/module_bindings -p examples/chat/quickstart_chat.py``) the same code
runs on typed rows and reducers.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import threading
from typing import Any

try:  # typed bindings, when generated next to this file
    from module_bindings import DbConnection  # type: ignore[import-not-found]
except ImportError:
    from spacetimedb.client import DbConnection

from spacetimedb.client import Credentials, EventContext, ReducerError, SubscribeAppliedEvent

printing = threading.Lock()
CONNECT_WAIT_SECONDS = 30  # how long to wait for the server before reading input
CALLS_WAIT_SECONDS = 10  # at the end of input, how long to wait for the calls already made to be answered


def say(text: str) -> None:
    with printing:
        print(text, flush=True)


def user_name(user: Any) -> str:
    return user.name if user.name else user.identity.to_hex()[:8]


def sender_name(ctx: EventContext, message: Any) -> str:
    sender = ctx.db.user.identity.find(message.sender)
    return user_name(sender) if sender is not None else "unknown"


# ---- what the others do --------------------------------------------------------------------------------------


def on_message(ctx: EventContext, message: Any) -> None:
    # messages that were there before we came are printed in order once the subscription is applied
    if not isinstance(ctx.event, SubscribeAppliedEvent):
        say(f"{sender_name(ctx, message)}: {message.text}")


def on_user_insert(ctx: EventContext, user: Any) -> None:
    if user.online and not isinstance(ctx.event, SubscribeAppliedEvent):
        say(f"* {user_name(user)} is online")


def on_user_update(ctx: EventContext, old: Any, new: Any) -> None:
    if old.name != new.name:
        say(f"* {user_name(old)} renamed to {user_name(new)}")
    if old.online != new.online:
        say(f"* {user_name(new)} {'connected' if new.online else 'disconnected'}")


def on_subscription_applied(ctx: EventContext) -> None:
    for message in sorted(ctx.db.message.iter(), key=lambda m: m.sent):
        say(f"{sender_name(ctx, message)}: {message.text}")
    online = sorted(user_name(u) for u in ctx.db.user.iter() if u.online)
    say(f"* online: {', '.join(online)}")


# ---- us -----------------------------------------------------------------------------------------------------------


def report_failure(call: Any, what: str) -> None:
    """Reducer calls complete in the background; tell the user when one was refused. The call is kept in
    ``pending_calls`` so the end of input can wait for its answer (piped input ends at once)."""
    pending_calls.append(call)

    def done(future: Any) -> None:
        error = future.exception()
        if isinstance(error, ReducerError):
            say(f"! {what} failed: {error.event.error}")
        elif error is not None:
            say(f"! {what} failed: {error}")

    call.add_done_callback(done)


pending_calls: list[Any] = []


def wait_for_calls(timeout: float) -> None:
    """Wait (at most ``timeout`` seconds in all) for the calls made so far to be answered and reported."""
    concurrent.futures.wait(pending_calls, timeout=timeout)


def handle_line(conn: DbConnection, line: str) -> bool:
    """One line of input; False when the user wants to leave."""
    line = line.strip()
    if not line:
        return True
    if line == "/quit":
        return False
    if line.startswith("/name"):
        report_failure(conn.reducers.set_name(line[len("/name") :].strip()), "changing your name")
    else:
        report_failure(conn.reducers.send_message(line), "sending")
    return True


def connect(server: str, database: str, credentials: Credentials, ready: threading.Event) -> DbConnection:
    """Connect; ``ready`` is set once the subscription is applied, or the connection failed or ended."""

    def on_connect(conn: DbConnection, identity: Any, token: str) -> None:
        credentials.save(token)
        say(f"* connected as {identity.to_hex()}")
        conn.subscription_builder().on_applied(applied).on_error(failed).subscribe(
            ["SELECT * FROM user", "SELECT * FROM message"]
        )

    def applied(ctx: EventContext) -> None:
        on_subscription_applied(ctx)
        ready.set()

    def failed(ctx: Any, error: Any) -> None:
        say(f"! subscription failed: {error}")
        ready.set()

    def connect_failed(ctx: Any, error: Any) -> None:
        say(f"! cannot connect: {error}")
        ready.set()

    def disconnected(ctx: Any, error: Any) -> None:
        say(f"* disconnected{f': {error}' if error else ''}")
        ready.set()

    conn = (
        DbConnection.builder()
        .with_uri(server)
        .with_database_name(database)
        .with_token(credentials.load())
        .on_connect(on_connect)
        .on_connect_error(connect_failed)
        .on_disconnect(disconnected)
        .build()
    )
    conn.db.message.on_insert(on_message)
    conn.db.user.on_insert(on_user_insert)
    conn.db.user.on_update(on_user_update)
    return conn


def server_url(server: str | None) -> str:
    """The URL of ``server`` (a nickname saved with `spacetime server add`, a host or a URL) or, for None, of the
    CLI's default server: the server `spacetime call` would use."""
    from spacetimedb.cli.config import read_config
    from spacetimedb.cli.context import resolve_config_path
    from spacetimedb.cli.servers import resolve_server

    return resolve_server(read_config(resolve_config_path(None)), server).url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chat through a SpacetimeDB quickstart-chat database.")
    parser.add_argument(
        "--server",
        default=os.environ.get("SPACETIMEDB_URI"),
        help="a URL or a saved server's nickname (default: $SPACETIMEDB_URI, else the CLI's default server)",
    )
    parser.add_argument("--database", default=os.environ.get("SPACETIMEDB_DATABASE", "quickstart-chat"))
    args = parser.parse_args(argv)
    credentials = Credentials(args.database)
    try:
        url = server_url(args.server)
    except Exception as error:  # an unknown nickname, an unreadable cli.toml: one line, not a traceback
        print(f"! {error}", file=sys.stderr)
        return 1
    ready = threading.Event()
    try:
        conn = connect(url, args.database, credentials, ready)
    except Exception as error:  # no server, no such database: one line, not a traceback
        print(f"! cannot connect to {args.database} at {url}: {error}", file=sys.stderr)
        return 1
    processing = conn.run_threaded()
    ready.wait(CONNECT_WAIT_SECONDS)  # so that piped input is sent once we are in, not lost before
    for line in sys.stdin:
        if not processing.is_alive() or not handle_line(conn, line):
            break
    wait_for_calls(CALLS_WAIT_SECONDS)
    conn.disconnect()
    processing.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
