"""The PostgreSQL wire protocol front end (``--pg-port``): ``psql``, psycopg, asyncpg and other PostgreSQL clients
query a database over protocol 3.0, with the simple and the extended (``$1`` parameters) query protocols.

Owns: the framing of protocol 3.0 (``messages``), the mapping of SATS types to PostgreSQL types and formats
(``types``), the answers made without a database (``catalog``: server parameters, ``version()``, ``SHOW``,
transaction control), one connection's state machine (``session``) and the listener (``PgListener``).
May import: ``spacetimedb.protocol`` (the worker seam), ``spacetimedb.sats``, ``spacetimedb.sql`` (formatting
helpers), ``spacetimedb.controller`` (types) and the server's ``auth``. Queries run in the database's worker
through ``RunningDatabase.sql_typed`` / ``describe_sql``, under the same rules as ``POST /sql``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .messages import error_response
from .session import PgSession

if TYPE_CHECKING:
    from ..app import Server

log = logging.getLogger(__name__)

__all__ = ["PgListener", "PgSession"]


class PgListener:
    """Accepts PostgreSQL connections on one address and serves each in its own task."""

    def __init__(self, server: Server, max_connections: int, startup_timeout: float) -> None:
        self.server = server
        self.max_connections = max_connections
        self.startup_timeout = startup_timeout
        self._listener: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._listener = await asyncio.start_server(self._accept, host, port, backlog=1024)
        self.bound = self._listener.sockets[0].getsockname()[:2]
        return self.bound

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._tasks) >= self.max_connections:
            writer.write(error_response("53300", "sorry, too many clients already", "FATAL"))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await PgSession(self.server, reader, writer).run(self.startup_timeout)
        finally:
            self._tasks.discard(task)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
