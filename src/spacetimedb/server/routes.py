"""HTTP routes of SpacetimeDB's client API (``/v1/...``) and the WebSocket upgrade.

Authentication: ``Authorization: Bearer <token>`` (or ``?token=``); routes that act as someone mint a fresh
identity when no token is given and return it in the ``spacetime-identity`` / ``spacetime-identity-token``
headers. Owner-only routes answer 401 without credentials and 403 for anyone but the owner.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import StreamReader, WSMsgType, web

from spacetimedb import __version__
from spacetimedb.backup import ArchiveError, Manifest, unpack_archive
from spacetimedb.controller import (
    BackupFailed,
    DatabaseNotFoundError,
    DatabaseUnavailableError,
    DurabilityLost,
    MigrationRefusedError,
    PastRefused,
    PublishError,
    RestoreRefused,
    WorkerGone,
)
from spacetimedb.keccak import keccak256
from spacetimedb.protocol import encoder_for, seam, v2
from spacetimedb.protocol.messages import close_reason
from spacetimedb.protocol.v1json import PROTOCOL_V1_JSON
from spacetimedb.sats import ConnectionId, Identity, Timestamp
from spacetimedb.sats.json import to_json
from spacetimedb.sats.types import TIMESTAMP

from .auth import AuthError, Claims, payload_json
from .control import NameError_, validate_name
from .metrics import metrics_route
from .session import Session

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger(__name__)
T = TypeVar("T")
DISCONNECT_POLL_SECONDS = 0.25
MAX_LISTED_TRANSACTIONS = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROTOCOL_PREFERENCE = (v2.PROTOCOL_V3, v2.PROTOCOL_V2, PROTOCOL_V1_JSON)
COMPRESSIONS = {"None": v2.COMPRESSION_NONE, "Gzip": v2.COMPRESSION_GZIP, "Brotli": v2.COMPRESSION_NONE}


class HttpError(Exception):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        if exc.body is not None:
            return web.json_response(exc.body, status=exc.status)
        return web.Response(status=exc.status, text=str(exc))
    except AuthError as exc:
        return web.Response(status=exc.status, text=str(exc))
    except DatabaseNotFoundError:
        return web.Response(status=404, text="No such database.")
    except DatabaseUnavailableError as exc:
        return web.Response(status=503, text=str(exc))
    except (WorkerGone, DurabilityLost) as exc:
        if exc.disk_full:
            return _no_space(request)
        return web.Response(status=503, text=f"the database stopped: {exc}; it restarts on its next use")


def _no_space(request: web.Request, headers: dict[str, str] | None = None) -> web.Response:
    """507: the database's disk is full; it keeps serving reads and writes again once there is space."""
    name = request.match_info.get("name", "")
    return web.Response(
        status=507,
        text=f"no space left on device: {name} (the database is read-only until its disk has room again)",
        headers=headers,
    )


def _server(request: web.Request) -> Server:
    from .app import SERVER_KEY

    return request.app[SERVER_KEY]


# ---- authentication ---------------------------------------------------------------------------------------------


def _token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("Authorization is invalid: expected `Bearer <token>`", 400)
        return value.strip()
    return request.query.get("token") or None


_CLAIMS = web.RequestKey("spacetimedb.claims", object)


@web.middleware
async def authentication_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the request's token before its route runs: checking another issuer's token may fetch that issuer's
    keys, which cannot happen in the (synchronous) ``claims_of``. A refusal waits until a route asks for the
    caller, so routes that need no credentials answer as before."""
    outcome: Claims | AuthError | None
    try:
        token = _token(request)
        outcome = None if token is None else await _server(request).auth.authenticate(token)
    except AuthError as refused:
        outcome = refused
    request[_CLAIMS] = outcome
    return await handler(request)


def claims_of(request: web.Request) -> Claims | None:
    """The caller's checked claims, None without credentials; raises ``AuthError`` for refused ones."""
    outcome = request[_CLAIMS]
    if isinstance(outcome, AuthError):
        raise outcome
    return outcome  # type: ignore[return-value]  # an AuthError was raised above, so this is the claims (or None)


def caller(request: web.Request) -> tuple[Identity, str | None]:
    """The caller's identity, minting a fresh one when there are no credentials (token then returned)."""
    claims = claims_of(request)
    if claims is not None:
        return claims.identity, None
    identity, token = _server(request).auth.mint()
    return identity, token


def caller_with_claims(request: web.Request) -> tuple[Identity, str | None, str]:
    """``caller``, with the payload of the caller's token as JSON (the claims a module sees)."""
    claims = claims_of(request)
    if claims is not None:
        return claims.identity, None, payload_json(claims)
    auth = _server(request).auth
    identity, token = auth.mint()
    return identity, token, payload_json(auth.validate(token))


def require_caller(request: web.Request) -> Identity:
    claims = claims_of(request)
    if claims is None:
        raise AuthError("Authorization required")
    return claims.identity


def _identity_headers(identity: Identity, minted_token: str | None) -> dict[str, str]:
    headers = {"spacetime-identity": identity.to_hex()}
    if minted_token is not None:
        headers["spacetime-identity-token"] = minted_token
    return headers


def _database(request: web.Request) -> Identity:
    found = _server(request).resolve(request.match_info["name"])
    if found is None:
        raise HttpError(404, "No such database.")
    return found


def _require_owner(request: web.Request, database: Identity) -> Identity:
    who = require_caller(request)
    record = _server(request).control.get(database)
    if record is None:
        raise HttpError(404, "No such database.")
    if record.owner != who:
        raise HttpError(403, f"identity {who.to_hex()} is not the owner of this database")
    return who


def _bool(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes", ""):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise HttpError(400, f"query parameter `{name}` must be true or false")


# ---- identity routes --------------------------------------------------------------------------------------------


async def ping(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def health(request: web.Request) -> web.Response:
    return web.json_response(
        {"package_name": "spacetimedb-py", "version": __version__, "nodes": 1, "schedulable": True}
    )


async def create_identity(request: web.Request) -> web.Response:
    identity, token = _server(request).auth.mint()
    return web.json_response({"identity": identity.to_hex(), "token": token})


async def websocket_token(request: web.Request) -> web.Response:
    claims = claims_of(request)
    if claims is None:
        raise AuthError("Authorization required")
    return web.json_response({"token": _server(request).auth.reissue(claims, 60)})


async def public_key(request: web.Request) -> web.Response:
    return web.Response(
        body=_server(request).auth.keys.public_pem, content_type="application/pem-certificate-chain"
    )


def _path_identity(request: web.Request) -> Identity:
    try:
        return Identity.from_hex(request.match_info["identity"])
    except ValueError:
        raise HttpError(400, "invalid identity: expected 64 hex digits") from None


async def verify_identity(request: web.Request) -> web.Response:
    identity = _path_identity(request)
    who = require_caller(request)
    return web.Response(status=204 if who == identity else 400)


async def identity_databases(request: web.Request) -> web.Response:
    identity = _path_identity(request)
    owned = await asyncio.to_thread(_server(request).control.owned_by, identity)
    return web.json_response({"identities": [i.to_hex() for i in owned]})


# ---- publishing -------------------------------------------------------------------------------------------------


async def publish(request: web.Request) -> web.Response:
    server = _server(request)
    name = request.match_info.get("name")
    program = await request.read()
    if not program:
        raise HttpError(400, "the request body must be the module program")
    who, minted = caller(request)
    clear = _bool(request, "clear", False)
    existing = _writable_target(request, name, who)
    database = existing or server.new_database_identity()
    try:
        result = await server.controller.publish(database, who, program, clear=clear)
    except MigrationRefusedError as exc:
        raise HttpError(400, f"Database update rejected: {exc}") from None
    except PublishError as exc:
        raise HttpError(400, f"Failed to create or update the database: {exc}") from None
    await asyncio.to_thread(
        server.control.register, database, who, result.program_hash, name if existing is None else None
    )
    op = "created" if result.op == "created" else "updated"
    body = {"Success": {"domain": name, "database_identity": database.to_hex(), "op": op}}
    return web.json_response(body, headers=_identity_headers(who, minted))


def _writable_target(request: web.Request, name: str | None, who: Identity) -> Identity | None:
    """The database ``name`` names, which ``who`` must own; None when it is to be created (the name is checked
    and ``who`` must be allowed to create databases)."""
    server = _server(request)
    existing = server.resolve(name) if name else None
    if name and existing is None:
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            raise HttpError(404, "No such database.")
        try:
            validate_name(name)
        except NameError_ as exc:
            raise HttpError(400, str(exc)) from None
    if existing is not None:
        record = server.control.get(existing)
        if record is not None and record.owner != who:
            raise HttpError(
                403, "only the owner may update this database", {"PermissionDenied": {"name": name}}
            )
    elif not server.may_create(who):
        raise HttpError(403, f"identity {who.to_hex()} may not create databases on this server")
    return existing


async def pre_publish(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    program = await request.read()
    _require_owner(request, database)
    try:
        validated = await server.controller.pre_publish(database, program)
    except PublishError as exc:
        raise HttpError(400, f"Failed to create or update the database: {exc}") from None
    if validated is None:
        raise HttpError(404, "No such database.")
    migration = validated.migration
    assert migration is not None
    if not migration.automatic:
        return web.json_response(
            {"ManualMigrate": {"reason": "\n".join(migration.incompatible), "major_version_upgrade": False}}
        )
    record = server.control.get(database)
    old_hash = record.program_hash.hex() if record else ""
    token = keccak256((database.to_hex() + old_hash + validated.program_hash.hex()).encode()).hex()
    color = request.query.get("pretty_print_style", request.query.get("style", "NoColor")) == "AnsiColor"
    return web.json_response(
        {
            "AutoMigrate": {
                "migrate_plan": migration.plan_ansi if color else migration.plan,
                "break_clients": migration.disconnects_clients,
                "token": "0x" + token,
                "major_version_upgrade": False,
            }
        }
    )


async def delete_database(request: web.Request) -> web.Response:
    server = _server(request)
    database = server.resolve(request.match_info["name"])
    if database is None:
        return web.Response(status=200)
    _require_owner(request, database)
    # the record goes first: a crash before the files are gone leaves an orphan directory, removed at start
    await asyncio.to_thread(server.control.remove, database)
    await server.controller.delete(database)
    return web.Response(status=200)


async def database_info(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    record = server.control.get(database)
    assert record is not None
    return web.json_response(
        {
            "database_identity": {"__identity__": "0x" + database.to_hex()},
            "owner_identity": {"__identity__": "0x" + record.owner.to_hex()},
            "host_type": {"Python": []},
            "initial_program": "0x" + record.program_hash.hex(),
            "names": server.control.names_of(database),
            "created": record.created.isoformat(),
            "updated": record.updated.isoformat(),
        }
    )


async def database_identity(request: web.Request) -> web.Response:
    return web.Response(text=_database(request).to_hex())


async def get_names(request: web.Request) -> web.Response:
    database = _database(request)
    return web.json_response({"names": _server(request).control.names_of(database)})


async def add_name(request: web.Request) -> web.Response:
    database = _database(request)
    _require_owner(request, database)
    name = (await _text(request)).strip()
    try:
        await asyncio.to_thread(_server(request).control.add_name, database, name)
    except NameError_ as exc:
        return web.json_response({"OtherError": str(exc)}, status=400)
    return web.json_response({"Success": {"domain": name, "database_result": database.to_hex()}})


async def set_names(request: web.Request) -> web.Response:
    database = _database(request)
    _require_owner(request, database)
    try:
        names = json.loads(await _text(request))
    except ValueError as exc:
        raise HttpError(400, f"the body must be a JSON array of names: {exc}") from None
    except RecursionError:
        raise HttpError(400, "the body must be a JSON array of names: it is nested too deeply") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HttpError(400, "the body must be a JSON array of names")
    try:
        await asyncio.to_thread(_server(request).control.set_names, database, names)
    except NameError_ as exc:
        return web.json_response({"OtherError": str(exc)}, status=400)
    return web.json_response("Success")


# ---- calling, querying, reading ----------------------------------------------------------------------------------


_CALL_ANSWERS = {
    seam.CALL_FAILED: 530,
    seam.CALL_OUT_OF_BUDGET: 402,
    seam.CALL_INTERNAL_ERROR: 500,
    seam.CALL_NO_SUCH_REDUCER: 404,
    seam.CALL_BAD_ARGUMENTS: 400,
    seam.CALL_LIFECYCLE: 400,
}


async def call_reducer(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    reducer = request.match_info["reducer"]
    if request.content_type != "application/json":
        raise HttpError(415, "the arguments must be sent as JSON (Content-Type: application/json)")
    args = await _text(request) if request.content_length != 0 else "[]"
    who, minted, claims = caller_with_claims(request)
    running = await server.database(database)
    done = await running.call(reducer, args or "[]", who, claims)
    headers = _identity_headers(who, minted)
    headers["spacetime-execution-duration-micros"] = str(done.duration_micros)
    headers["spacetime-energy-used"] = "0"
    if done.status == seam.CALL_COMMITTED:
        await running.durable.wait(done.offset)
        if done.value_json is not None:  # a procedure's return value
            return web.Response(
                status=200, text=done.value_json, content_type="application/json", headers=headers
            )
        return web.Response(status=200, headers=headers)
    if done.status == seam.CALL_NO_SPACE:
        return _no_space(request, headers)
    if done.status == seam.CALL_REFUSED:
        raise HttpError(403, f"the module refused the connection: {done.message}")
    if done.status in (seam.CALL_NO_SUCH_REDUCER, seam.CALL_BAD_ARGUMENTS, seam.CALL_LIFECYCLE):
        raise HttpError(_CALL_ANSWERS[done.status], done.message)
    return web.Response(status=_CALL_ANSWERS.get(done.status, 500), text=done.message, headers=headers)


# the charsets whose text reads the same as UTF-8 (ASCII is a subset of it)
_UTF8_COMPATIBLE = ("utf-8", "ascii")


async def _text(request: web.Request) -> str:
    """The body as text. Text bodies are UTF-8: any other charset is refused (415) rather than guessed."""
    charset = request.charset
    if charset and _codec_name(charset) not in _UTF8_COMPATIBLE:
        raise HttpError(415, f"unsupported charset `{charset}`: send the body as UTF-8 (charset=utf-8)")
    body = await request.read()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"the body is not valid UTF-8: {exc}") from None


def _codec_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None


async def sql(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    text = await _text(request)
    if "as_of" in request.query:
        return await _sql_as_of(request, database, text)
    who, minted = caller(request)
    running = await server.database(database)
    started = asyncio.get_running_loop().time()
    done = await _while_connected(request, running.sql(text, who))
    if done.no_space:
        return _no_space(request)
    if not done.ok:
        raise HttpError(400, done.body)
    if _bool(request, "confirmed", False):
        await running.durable.wait(done.offset)
    headers = _identity_headers(who, minted)
    headers["spacetime-execution-duration-micros"] = str(
        int((asyncio.get_running_loop().time() - started) * 1e6)
    )
    return web.Response(text=done.body, content_type="application/json", headers=headers)


async def _sql_as_of(request: web.Request, database: Identity, text: str) -> web.Response:
    """Owner only: ``text`` (reads only) on the database as it was right after a transaction, given by its
    offset or a time (RFC 3339); the headers say what it cost."""
    who = _require_owner(request, database)
    offset, micros = _as_of(request.query["as_of"])
    try:
        done = await _server(request).controller.query_past(database, text, who, offset, micros)
    except PastRefused as exc:
        raise HttpError(400, f"cannot read the past: {exc}") from None
    headers = {
        "spacetime-as-of-offset": str(done.offset),
        "spacetime-as-of-snapshot-offset": "" if done.snapshot_offset is None else str(done.snapshot_offset),
        "spacetime-as-of-replayed": str(done.replayed),
        "spacetime-as-of-micros": str(done.micros),
    }
    if not done.ok:
        return web.Response(status=400, text=done.body, headers=headers)
    return web.Response(text=done.body, content_type="application/json", headers=headers)


def _as_of(text: str) -> tuple[int | None, int | None]:
    """A transaction offset, or a time as µs since the epoch."""
    text = text.strip()
    if text.isdigit():
        return int(text), None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HttpError(
            400, f"as_of must be a transaction offset or a time like 2026-12-06T21:18:13Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return None, (moment - _EPOCH) // dt.timedelta(microseconds=1)


async def transactions(request: web.Request) -> web.Response:
    """Owner only: the transactions of the database (offset, time, reducer, caller, rows per table), ``limit``
    of them from offset ``from`` (default: the newest)."""
    database = _database(request)
    _require_owner(request, database)
    try:
        first = int(request.query["from"]) if "from" in request.query else None
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise HttpError(400, "from and limit must be integers") from None
    if not 1 <= limit <= MAX_LISTED_TRANSACTIONS or (first is not None and first < 0):
        raise HttpError(400, f"limit must be 1 to {MAX_LISTED_TRANSACTIONS}, and from at least 0")
    try:
        entries = await _server(request).controller.list_transactions(database, first, limit)
    except PastRefused as exc:
        raise HttpError(400, f"cannot list the transactions: {exc}") from None
    return web.Response(text=entries, content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    """Owner only: what the database's worker holds (clients, subscriptions), for operators and tests."""
    server = _server(request)
    database = _database(request)
    _require_owner(request, database)
    running = await server.database(database)
    counts = await running.stats()
    return web.json_response(counts._asdict())


async def logs(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    database = _database(request)
    _require_owner(request, database)
    try:
        lines = int(request.query["num_lines"]) if "num_lines" in request.query else None
    except ValueError:
        raise HttpError(400, "num_lines must be an integer") from None
    follow = _bool(request, "follow", False)
    running = server.controller.running(database)
    if running is None and follow and server.controller.failure(database) is None:
        try:
            running = await server.database(database)
        except DatabaseUnavailableError:
            running = None  # the log on disk says why
    if running is not None:
        tail = await running.tail_log(lines)
    else:
        tail = await server.controller.read_log(database, lines)
    response = web.StreamResponse(
        headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def follower(line: str) -> None:
        _offer(queue, line)

    following = follow and running is not None
    if following:
        assert running is not None
        running.follow_log(follower)
    try:
        for line in tail:
            await response.write((line + "\n").encode())
        while following and not server.stopping and not _gone(request):
            try:
                line = await asyncio.wait_for(queue.get(), 0.5)
            except TimeoutError:
                continue  # look again whether the client left or the server is stopping
            if not line:
                break  # the database stopped
            await response.write((line + "\n").encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if following:
            assert running is not None
            running.unfollow_log(follower)
    return response


# ---- backups ------------------------------------------------------------------------------------------------------


async def backup(request: web.Request) -> web.StreamResponse:
    """Owner only: a hot backup archive (docs/backup-format.md), streamed while the database keeps serving. The
    headers state the offset it holds; a backup that breaks off ends the response early (no manifest, so no
    restore accepts it)."""
    server = _server(request)
    database = _database(request)
    _require_owner(request, database)
    try:
        stream = await server.controller.backup(database)
    except BackupFailed as exc:
        raise HttpError(500, f"the backup failed: {exc}") from None
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/x-tar",
                "Content-Disposition": f'attachment; filename="{database.to_hex()[:16]}-{stream.offset}.tar"',
                "spacetime-backup-offset": str(stream.offset),
                "spacetime-backup-snapshot-offset": ""
                if stream.snapshot_offset is None
                else str(stream.snapshot_offset),
            }
        )
        await response.prepare(request)
        try:
            async for chunk in stream.chunks():
                await response.write(chunk)
        except BackupFailed as exc:
            log.warning("the backup of %s broke off: %s", database.to_hex(), exc)
            if request.transport is not None:
                request.transport.close()  # the client sees a cut stream, never a complete-looking archive
            return response
        await response.write_eof()
        return response
    finally:
        await stream.close()


async def restore(request: web.Request) -> web.Response:
    """Create the database NAME from a backup archive (the body), or replace it with ``?clear=true`` (owner
    only). The archive is verified while it streams in; a damaged one is refused and nothing changes."""
    server = _server(request)
    name = request.match_info["name"]
    who, minted = caller(request)
    existing = _writable_target(request, name, who)
    database = existing or server.new_database_identity()
    loop = asyncio.get_running_loop()
    body = _BlockingBody(request.content, loop)

    async def unpack(staging: Path) -> Manifest:
        return await asyncio.to_thread(unpack_archive, body, staging)  # type: ignore[arg-type]  # _BlockingBody reads like the binary file unpack_archive takes

    try:
        result = await server.controller.restore(database, who, unpack, clear=_bool(request, "clear", False))
    except ArchiveError as exc:
        raise HttpError(400, f"the archive is refused: {exc}") from None
    except RestoreRefused as exc:
        raise HttpError(409 if existing is not None else 400, f"the restore is refused: {exc}") from None
    await asyncio.to_thread(
        server.control.register, database, who, result.program_hash, name if existing is None else None
    )
    body_json = {
        "database_identity": database.to_hex(),
        "name": name,
        "offset": result.offset,
        "snapshot_offset": result.manifest.snapshot_offset,
        "backed_up_from": result.manifest.database,
        "created": result.manifest.created,
        "op": "replaced" if existing is not None else "created",
    }
    return web.json_response(body_json, headers=_identity_headers(who, minted))


class _BlockingBody:
    """A request body as a blocking file for a thread (the archive reader), fed by the event loop."""

    def __init__(self, content: StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        self._content = content
        self._loop = loop

    def read(self, count: int = -1) -> bytes:
        return asyncio.run_coroutine_threadsafe(self._content.read(count), self._loop).result()


async def _while_connected(request: web.Request, work: Awaitable[T]) -> T:
    """Await ``work``, but cancel it (the worker then stops the query) once the client has hung up."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
        if done:
            return task.result()
        if _gone(request):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise HttpError(499, "the client closed the connection")


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _offer(queue: asyncio.Queue[str], line: str) -> None:
    try:
        queue.put_nowait(line)
    except asyncio.QueueFull:  # a follower that cannot keep up loses lines rather than memory
        pass


async def schema(request: web.Request) -> web.Response:
    server = _server(request)
    database = _database(request)
    version = request.query.get("version")
    if version is None:
        raise HttpError(400, "the `version` query parameter is required (9)")
    if version != "9":
        raise HttpError(400, f"schema version {version} is not supported; use version=9")
    running = await server.database(database)
    who, minted = caller(request)
    # `event_flags=true` (asked for by this project's `spacetime generate`) marks event tables, which V9 cannot say
    raw = await running.schema(_bool(request, "event_flags", False))
    return web.Response(text=raw, content_type="application/json", headers=_identity_headers(who, minted))


async def timestamp(request: web.Request) -> web.Response:
    _database(request)
    return web.json_response(to_json(TIMESTAMP, Timestamp.now()))


# ---- the WebSocket ------------------------------------------------------------------------------------------------


def _choose_protocol(request: web.Request) -> str:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    for protocol in PROTOCOL_PREFERENCE:
        if protocol in offered:
            return protocol
    raise HttpError(
        400,
        "no valid protocol selected: offer v3.bsatn.spacetimedb, v2.bsatn.spacetimedb or v1.json.spacetimedb",
    )


def _connection_id(request: web.Request) -> ConnectionId:
    text = request.query.get("connection_id")
    if not text:
        return ConnectionId.random()
    try:
        connection_id = ConnectionId.from_hex(text)
    except ValueError:
        raise HttpError(400, "invalid connection_id: expected 32 hex digits") from None
    if connection_id.value == 0:
        raise HttpError(400, "connection_id must not be zero")
    return connection_id


_WIRE_PROTOCOLS = {
    PROTOCOL_V1_JSON: seam.CLIENT_PROTOCOL_V1_JSON,
    v2.PROTOCOL_V2: seam.CLIENT_PROTOCOL_V2,
    v2.PROTOCOL_V3: seam.CLIENT_PROTOCOL_V3,
}


async def subscribe(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    connection_id = _connection_id(request)
    compression_name = request.query.get("compression", "Brotli")
    if compression_name not in COMPRESSIONS:
        raise HttpError(400, "compression must be None, Gzip or Brotli")
    database = _database(request)
    claims = claims_of(request)
    if claims is not None:
        identity, token = claims.identity, _token(request) or ""
    else:
        identity, token = server.auth.mint()
        claims = server.auth.validate(token)
    protocol = _choose_protocol(request)
    confirmed = _bool(request, "confirmed", protocol != PROTOCOL_V1_JSON)
    running = await server.database(database)
    # text frames arrive as bytes: the worker decodes them, so that one that is not UTF-8 is closed with a
    # reason (aiohttp's own check would close it without one)
    ws = web.WebSocketResponse(
        protocols=(protocol,),
        max_msg_size=server.options.max_message_bytes,
        heartbeat=15.0,
        decode_text=False,
    )
    await ws.prepare(request)
    # aiohttp keeps the upgraded connection's transport only on its frame writer; a session needs it to drop
    # a client that stopped reading (a close frame would wait behind everything that client did not read)
    transport = getattr(getattr(ws, "_writer", None), "transport", None)
    encoder = encoder_for(protocol)
    session = Session(
        server,
        running,
        ws,
        identity,
        connection_id,
        encoder,
        COMPRESSIONS[compression_name],
        confirmed,
        transport,
    )
    try:
        await _serve_session(server, session, protocol, token, payload_json(claims))
    finally:
        _stop_heartbeat(ws)
    return ws


def _stop_heartbeat(ws: web.WebSocketResponse) -> None:
    """aiohttp (3.14) re-arms a WebSocket's heartbeat when the peer's close frame arrives after the close began,
    and the timer then keeps the whole closed connection alive for one to two heartbeat periods: a client that
    reconnects quickly would pin memory at its connection rate. Cancel it once the session is over."""
    cancel = getattr(ws, "_cancel_heartbeat", None)
    if cancel is not None:
        cancel()


async def _serve_session(server: Server, session: Session, protocol: str, token: str, claims: str) -> None:
    running = session.database
    ws = session.ws
    try:
        client, refusal = await running.connect(
            session, session.identity, session.connection_id, _WIRE_PROTOCOLS[protocol], claims
        )
    except WorkerGone as exc:
        await ws.close(code=1011, message=close_reason(f"the database stopped: {exc}"))
        return
    if refusal is not None:
        await ws.close(code=1008, message=close_reason(f"connection refused: {refusal}"))
        return
    session.client_id = client
    # the token is for this client only: it never goes through the database's worker
    first = session.encoder.initial_connection(session.identity, session.connection_id, token)
    server.sessions.add(session)
    try:
        if session.encoder.binary:
            await ws.send_bytes(v2.server_frame([first]))
        else:
            await ws.send_frame(first, WSMsgType.TEXT)
        await session.run()
    finally:
        server.sessions.discard(session)
        running.disconnect(client)


# ---- the route table -----------------------------------------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ping", ping)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/metrics", metrics_route)
    app.router.add_post("/v1/identity", create_identity)
    app.router.add_post("/v1/identity/websocket-token", websocket_token)
    app.router.add_get("/v1/identity/public-key", public_key)
    app.router.add_get("/v1/identity/{identity}/verify", verify_identity)
    app.router.add_get("/v1/identity/{identity}/databases", identity_databases)
    app.router.add_post("/v1/database", publish)
    app.router.add_put("/v1/database/{name}", publish)
    app.router.add_post("/v1/database/{name}/pre_publish", pre_publish)
    app.router.add_get("/v1/database/{name}", database_info)
    app.router.add_delete("/v1/database/{name}", delete_database)
    app.router.add_get("/v1/database/{name}/identity", database_identity)
    app.router.add_get("/v1/database/{name}/names", get_names)
    app.router.add_post("/v1/database/{name}/names", add_name)
    app.router.add_put("/v1/database/{name}/names", set_names)
    app.router.add_get("/v1/database/{name}/subscribe", subscribe)
    app.router.add_post("/v1/database/{name}/call/{reducer}", call_reducer)
    app.router.add_post("/v1/database/{name}/sql", sql)
    app.router.add_get("/v1/database/{name}/logs", logs)
    app.router.add_get("/v1/database/{name}/backup", backup)
    app.router.add_get("/v1/database/{name}/transactions", transactions)
    app.router.add_post("/v1/database/{name}/restore", restore)
    app.router.add_get("/v1/database/{name}/schema", schema)
    app.router.add_get("/v1/database/{name}/unstable/timestamp", timestamp)
    app.router.add_get("/v1/database/{name}/unstable/stats", stats)
