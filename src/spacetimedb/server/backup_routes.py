"""Routes of backups: a database's hot backup as a tar stream, and a restore from one."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import StreamReader, web

from spacetimedb.backup import ArchiveError, Manifest, unpack_archive
from spacetimedb.controller import BackupFailed, RestoreRefused

from .database_routes import LOCKED_AGAINST_RESET, _refuse_if_locked, _writable_target
from .route_support import HttpError, _bool, _database, _identity_headers, _require_owner, _server, caller

log = logging.getLogger(__name__)


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
    if existing is not None:  # replacing its data is deleting it, which a lock forbids
        _refuse_if_locked(request, existing, LOCKED_AGAINST_RESET)
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
