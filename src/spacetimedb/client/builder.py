"""``DbConnection.builder()``: ``DbConnectionBuilder`` says where and as whom to connect, then builds the
connection (threaded or in asyncio)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from spacetimedb.sats import Identity

from .events import EventContext
from .network import ConnectionConfig
from .schema import ModuleSchema

if TYPE_CHECKING:
    from .connection import DbConnection

C = TypeVar("C", bound="DbConnection")


class DbConnectionBuilder(Generic[C]):
    """``DbConnection.builder().with_uri(...).with_database_name(...)...build()``."""

    def __init__(self, connection_class: type[C]) -> None:
        self._connection_class = connection_class
        self._uri: str | None = None
        self._database: str | None = None
        self._token: str | None = None
        self._confirmed: bool | None = None
        self._compression = "gzip"
        self._module: ModuleSchema | None = connection_class.MODULE
        self._on_connect: Callable[[C, Identity, str], None] | None = None
        self._on_disconnect: Callable[[EventContext, BaseException | None], None] | None = None
        self._on_connect_error: Callable[[EventContext, BaseException], None] | None = None

    def with_uri(self, uri: str) -> DbConnectionBuilder[C]:
        """The server: ``http://host:port`` (or ``ws://``, ``https://``, ``wss://``)."""
        self._uri = uri
        return self

    def with_database_name(self, name: str) -> DbConnectionBuilder[C]:
        """The database's name or identity (hex)."""
        self._database = name
        return self

    with_module_name = with_database_name

    def with_token(self, token: str | None) -> DbConnectionBuilder[C]:
        """Connect as the identity of this token (e.g. a saved one); None: the server makes a new identity."""
        self._token = token or None
        return self

    def with_confirmed_reads(self, confirmed: bool) -> DbConnectionBuilder[C]:
        """Ask the server to send updates only once they are durable (the server's default is used if unset)."""
        self._confirmed = confirmed
        return self

    def with_compression(self, compression: str) -> DbConnectionBuilder[C]:
        """``"gzip"`` (default) or ``"none"`` for the server's messages."""
        if compression not in ("gzip", "none"):
            raise ValueError("compression must be 'gzip' or 'none' (this SDK does not decode brotli)")
        self._compression = compression
        return self

    def with_schema(self, schema: ModuleSchema | Mapping[str, Any]) -> DbConnectionBuilder[C]:
        """Use this schema (or RawModuleDef v9 JSON) instead of asking the server for it."""
        self._module = schema if isinstance(schema, ModuleSchema) else ModuleSchema.from_raw_v9(schema)
        return self

    def on_connect(self, callback: Callable[[C, Identity, str], None]) -> DbConnectionBuilder[C]:
        """``callback(conn, identity, token)`` once the server accepted the connection."""
        self._on_connect = callback
        return self

    def on_disconnect(
        self, callback: Callable[[EventContext, BaseException | None], None]
    ) -> DbConnectionBuilder[C]:
        """``callback(ctx, error)`` when an established connection ends (``error`` is None for a clean close)."""
        self._on_disconnect = callback
        return self

    def on_connect_error(
        self, callback: Callable[[EventContext, BaseException], None]
    ) -> DbConnectionBuilder[C]:
        """``callback(ctx, error)`` if the connection could not be made."""
        self._on_connect_error = callback
        return self

    def _config(self) -> ConnectionConfig:
        if not self._uri:
            raise ValueError("call with_uri() before build()")
        if not self._database:
            raise ValueError("call with_database_name() before build()")
        return ConnectionConfig(self._uri, self._database, self._token, self._confirmed, self._compression)

    def build(self) -> C:
        """Connect in the background (a daemon thread owns the socket) and return the connection.

        Without generated bindings this first reads the schema from the server, and raises ``ConnectError``
        if it cannot. Process messages with ``frame_tick()``, ``run_threaded()``, ``run()`` or
        ``advance_one_message()``.
        """
        conn = self._connection_class(self, self._module)
        conn._start_threaded()
        return conn

    async def build_async(self) -> C:
        """Connect from the running asyncio loop; messages are processed in the loop as they arrive."""
        conn = self._connection_class(self, self._module)
        await conn._start_async()
        return conn
