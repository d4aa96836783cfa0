"""HTTP routes of SpacetimeDB's client API (``/v1/...``) and the WebSocket upgrade: the route table.

Authentication: ``Authorization: Bearer <token>`` (or ``?token=``); routes that act as someone mint a fresh
identity when no token is given and return it in the ``spacetime-identity`` / ``spacetime-identity-token``
headers. Owner-only routes answer 401 without credentials and 403 for anyone but the owner.
"""

from __future__ import annotations

from aiohttp import web

from .backup_routes import backup, restore
from .database_routes import (
    add_name,
    database_identity,
    database_info,
    delete_database,
    get_names,
    lock_database,
    pre_publish,
    publish,
    set_names,
    unlock_database,
)
from .handler_routes import ROUTE_PATTERN, call_route
from .identity_routes import (
    create_identity,
    health,
    identity_databases,
    ping,
    public_key,
    verify_identity,
    websocket_token,
)
from .metrics import metrics_route
from .read_routes import call_reducer, logs, schema, sql, stats, timestamp, transactions
from .route_support import (
    HttpError,
    authentication_middleware,
    caller,
    claims_of,
    error_middleware,
    require_caller,
)
from .websocket_route import subscribe

# the routes of each concern live in their own modules (``identity_routes``, ``database_routes``,
# ``read_routes``, ``backup_routes``, ``websocket_route``), what they share in ``route_support``; the names the
# application and other modules use are still importable from here
__all__ = [
    "HttpError",
    "add_routes",
    "authentication_middleware",
    "caller",
    "claims_of",
    "error_middleware",
    "require_caller",
]

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
    app.router.add_post("/v1/database/{name}/lock", lock_database)
    app.router.add_post("/v1/database/{name}/unlock", unlock_database)
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
    app.router.add_route("*", ROUTE_PATTERN, call_route)
