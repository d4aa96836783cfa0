"""The server process: SpacetimeDB's HTTP and WebSocket client API on one aiohttp event loop.

It holds the signing key, the control database and the HostController; every database runs in its own worker
process (``spacetimedb.controller``), and the server only moves bytes between clients and workers. Layout of the
data directory: ``server.lock`` (one server per directory), ``keys/``, ``control/`` (the control database) and
``databases/`` (one directory per database).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from spacetimedb.controller import HostController, RunningDatabase, WorkerSettings
from spacetimedb.durability import DirectoryLock
from spacetimedb.sats import Identity

from . import routes
from .auth import KeyPair, TokenAuthority, identity_from_claims
from .connections import ConnectionGate, ConnectionSettings, raise_open_file_limit
from .control import ControlDB
from .cors import CorsPolicy
from .egress import EgressPolicy, HttpEgress
from .isolation import Isolation, decide_isolation
from .oidc import FetchLimits, OidcIssuer, OidcKeys
from .pgwire import PgListener

log = logging.getLogger(__name__)

SERVER_KEY: web.AppKey[Server] = web.AppKey("server")
MAX_MESSAGE_BYTES = 32 << 20
MAX_PROGRAM_BYTES = 64 << 20


@dataclass(frozen=True)
class ServerOptions:
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    # who may create databases (None: anyone, as on SpacetimeDB); updating needs ownership either way
    publishers: frozenset[Identity] | None = None
    # run even where modules cannot be isolated, on a non-loopback address
    unsafe_modules: bool = False
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # per client: reducer calls queued before the server stops reading its socket
    max_in_flight: int = 1024
    # per client: bytes of messages waiting to be sent before the client is dropped as too slow
    max_outbox_bytes: int = 64 << 20
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    # which web pages' origins may read /v1 answers (any, as upstream, unless narrowed)
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    # what procedures' outbound HTTP requests may do
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # OpenID Connect issuers whose tokens are accepted besides the server's own
    oidc_issuers: tuple[OidcIssuer, ...] = ()
    oidc_key_refresh_seconds: float = FetchLimits.refresh_seconds
    # lets non-loopback clients scrape /v1/metrics (loopback ones always may)
    metrics_token: str | None = None
    log_level: str = "warning"  # the server's own log
    log_format: str = "text"  # or "json"
    # the PostgreSQL wire protocol's port on the listen host (None: off, as upstream)
    pg_port: int | None = None


class Server:
    """Owns the controller, the control database and the keys."""

    def __init__(self, data_dir: Path | str | None, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._lock: DirectoryLock | None = None
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock = _ServerLock(self.data_dir).acquire()
        try:
            keys = KeyPair.load_or_create(self.data_dir / "keys") if self.data_dir else KeyPair.ephemeral()
            oidc = OidcKeys(
                self.options.oidc_issuers, FetchLimits(refresh_seconds=self.options.oidc_key_refresh_seconds)
            )
            self.auth = TokenAuthority(keys, oidc=oidc)
            self.control = ControlDB.open(self.data_dir)
            self.egress = HttpEgress(self.options.egress)
            workers = dataclasses.replace(self.options.workers, http_egress=self.egress)
            self.controller = HostController(self.data_dir, workers)
            self._remove_orphan_databases()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: set[Any] = set()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self.connections: ConnectionGate | None = None
        self.isolation: Isolation | None = None
        self.bound: tuple[str, int] | None = None
        self.pg: PgListener | None = None
        self.stopping = False

    def _remove_orphan_databases(self) -> None:
        """Remove the database directories the control database does not know: a creation recorded only once
        it finished, or a deletion, was cut short. A control database made just now knows none, so then they are
        someone's data (its control database was lost) and stay."""
        if self.data_dir is None:
            return
        if not self.control.created:
            self.controller.remove_orphans(self.control.identities())
        elif any(not entry.name.startswith(".") for entry in (self.data_dir / "databases").iterdir()):
            log.warning(
                "the control database is new, so the databases already in %s are unknown to it and left alone",
                self.data_dir / "databases",
            )

    async def database(self, identity: Identity) -> RunningDatabase:
        """The running database, launching its worker if it is not running."""
        return await self.controller.get_or_launch(identity)

    # -- names and identities ------------------------------------------------------------------------------------

    def resolve(self, name_or_identity: str) -> Identity | None:
        if len(name_or_identity) == 64:
            try:
                identity = Identity.from_hex(name_or_identity)
            except ValueError:
                pass
            else:
                return identity if self.control.get(identity) is not None else None
        return self.control.resolve(name_or_identity)

    def may_create(self, who: Identity) -> bool:
        publishers = self.options.publishers
        return publishers is None or who in publishers

    def new_database_identity(self) -> Identity:
        return identity_from_claims(self.auth.issuer, str(uuid.uuid4()))

    # -- running ------------------------------------------------------------------------------------------------

    def make_app(self, connections: ConnectionGate) -> web.Application:
        middlewares = [
            connections.middleware,
            self.options.cors.middleware,
            routes.error_middleware,
            routes.authentication_middleware,
        ]
        app = web.Application(client_max_size=MAX_PROGRAM_BYTES, middlewares=middlewares)
        app[SERVER_KEY] = self
        routes.add_routes(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 3000) -> tuple[str, int]:
        """Decide how modules are isolated (``IsolationRefused`` where they cannot be, beyond loopback), then
        accept connections."""
        self.isolation = decide_isolation(host, self.controller.settings, self.options.unsafe_modules)
        self.controller.settings = self.isolation.settings
        self.loop = asyncio.get_running_loop()
        await self.controller.start()
        self.connections = ConnectionGate(self.options.connections.resolve(raise_open_file_limit()))
        # open requests get this long to finish when the server stops (streams notice `stopping` sooner)
        self._runner = web.AppRunner(
            self.make_app(self.connections),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=5.0,
            keepalive_timeout=self.connections.limits.keepalive_timeout,
        )
        await self._runner.setup()
        assert self._runner.server is not None
        self._listener = await self.connections.listen(self._runner.server, host, port, backlog=1024)
        self.bound = self._listener.sockets[0].getsockname()[:2]
        log.info("listening on %s:%d (data in %s)", *self.bound, self.data_dir or "memory")
        if self.options.pg_port is not None:
            limits = self.connections.limits
            self.pg = PgListener(self, limits.max_connections, limits.request_head_timeout)
            await self.pg.start(host, self.options.pg_port)
        return self.bound

    async def stop(self) -> None:
        """Stop accepting, close client connections, let queued reducers finish, flush and close everything."""
        self.stopping = True
        for session in list(self.sessions):
            session.close(1001, "the server is shutting down")
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.pg is not None:
            await self.pg.stop()
            self.pg = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.connections is not None:
            self.connections.close()
        await self.controller.shutdown()
        await self.egress.close()
        await self.auth.oidc.close()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        try:
            self.control.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


class _ServerLock(DirectoryLock):
    """One server per data directory (the lock file is ``server.lock``)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.path = directory / "server.lock"


async def serve(
    data_dir: Path | None,
    host: str,
    port: int,
    options: ServerOptions | None = None,
    on_ready: Callable[[Server], Awaitable[None] | None] | None = None,
) -> None:
    """Run a server until SIGINT or SIGTERM, then shut down gracefully."""
    server = Server(data_dir, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start(host, port)
        if on_ready is not None:
            result = on_ready(server)
            if asyncio.iscoroutine(result):
                await result
        await stop.wait()
    finally:
        await server.stop()


def tune_gc() -> None:
    """Collect cyclic garbage far less often than CPython's default (every 700 net allocations).

    A server holds every table's rows in memory and keeps thousands of requests in flight, so the default
    thresholds run a collection every few dozen reducer calls, and each older-generation pass walks live data that
    is never garbage. Measured with the keynote transfer workload through the host (no network): about 28k
    transfers/s with the defaults, 34-43k with these thresholds. Rows and messages are freed by reference counting;
    only rare cycles wait longer.
    """
    gc.set_threshold(50_000, 20, 100)


def run(
    data_dir: Path | None, host: str, port: int, options: ServerOptions | None = None, on_ready: Any = None
) -> None:
    """Run the server in the foreground on uvloop (when installed)."""
    tune_gc()
    main = serve(data_dir, host, port, options, on_ready)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on other platforms
        asyncio.run(main)
        return
    uvloop.run(main)
