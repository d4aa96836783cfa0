"""Routes that publish, describe, delete and name databases."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from spacetimedb.controller import MigrationRefusedError, PublishError, migration_token
from spacetimedb.sats import Identity

from .control import NameError_, validate_name
from .read_routes import _text
from .route_support import HttpError, _bool, _database, _identity_headers, _require_owner, _server, caller

# Upstream's replies (crates/client-api/src/routes/database.rs, reset_database and delete_database).
LOCKED_AGAINST_DELETE = "Database is locked and cannot be deleted. Run `spacetime unlock` first."
LOCKED_AGAINST_RESET = (
    "Database is locked and cannot be reset with --delete-data. Run `spacetime unlock` first."
)


def _refuse_if_locked(request: web.Request, database: Identity, reply: str) -> None:
    if _server(request).control.is_locked(database):
        raise HttpError(403, reply)


async def lock_database(request: web.Request) -> web.Response:
    return await _set_lock(request, True)


async def unlock_database(request: web.Request) -> web.Response:
    return await _set_lock(request, False)


async def _set_lock(request: web.Request, locked: bool) -> web.Response:
    """The owner locks a database against deletion and ``--delete-data`` (updates stay allowed), or unlocks it."""
    database = _database(request)
    _require_owner(request, database)
    await asyncio.to_thread(_server(request).control.set_locked, database, locked)
    return web.Response(status=200)


# ---- publishing -------------------------------------------------------------------------------------------------


async def publish(request: web.Request) -> web.Response:
    server = _server(request)
    name = request.match_info.get("name")
    program = await request.read()
    if not program:
        raise HttpError(400, "the request body must be the module program")
    who, minted = caller(request)
    clear = _bool(request, "clear", False)
    break_clients_token = _migration_policy(request)
    existing = _writable_target(request, name, who)
    if existing is not None and clear:
        _refuse_if_locked(request, existing, LOCKED_AGAINST_RESET)
    database = existing or server.new_database_identity()
    try:
        result = await server.controller.publish(
            database, who, program, clear=clear, break_clients_token=break_clients_token
        )
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


MISSING_MIGRATION_TOKEN = "Migration policy is set to `BreakClients`, but no migration token was provided."
MIGRATION_POLICIES = ("Compatible", "BreakClients")


def _migration_policy(request: web.Request) -> bytes | None:
    """Upstream's ``policy`` and ``token`` query parameters: the default policy, ``Compatible``, allows no
    update that disconnects the clients (None); ``BreakClients`` allows one, with the token the pre-publish
    answer gave for this update (returned as bytes)."""
    policy = request.query.get("policy", "Compatible")
    if policy not in MIGRATION_POLICIES:
        raise HttpError(
            400,
            f"Failed to deserialize query string: policy: unknown variant `{policy}`, "
            "expected `Compatible` or `BreakClients`",
        )
    token = request.query.get("token")
    if policy == "Compatible":
        return None
    if token is None:
        raise HttpError(400, MISSING_MIGRATION_TOKEN)
    return _parse_token(token)


def _parse_token(text: str) -> bytes:
    """A 256-bit token as the pre-publish answer gives it (``0x`` and 64 hex digits), as bare hex, or as the
    decimal number a SATS serializer may turn it into."""
    digits = text.removeprefix("0x")
    try:
        value = int(digits, 16) if len(digits) == 64 or text.startswith("0x") else int(text, 10)
        return value.to_bytes(32, "big")
    except (ValueError, OverflowError):
        raise HttpError(
            400, f"Failed to deserialize query string: token: {text!r} is not a 256-bit hash"
        ) from None


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
    assert record is not None
    token = migration_token(database, record.program_hash, validated.program_hash).hex()
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
    _refuse_if_locked(request, database, LOCKED_AGAINST_DELETE)
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
