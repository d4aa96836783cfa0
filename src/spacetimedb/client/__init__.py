"""The Python client SDK: connect to a database, subscribe to queries, keep a cache, call reducers.

Owns: the connection (``connection``), its builder (``builder``), its table, reducer and procedure accessors
(``handles``), subscriptions (``subscriptions``), request futures (``pending``), the per-table client cache
(``cache``), the client's view of a module schema (``schema``), events and callback contexts (``events``), the
WebSocket and HTTP calls (``network``), the token file (``credentials``).
May import: ``spacetimedb.sats`` and ``spacetimedb.protocol`` only.

Shaped like the official SDKs, in Python naming::

    from spacetimedb.client import DbConnection

    conn = (
        DbConnection.builder()
        .with_uri("http://127.0.0.1:3000")
        .with_database_name("quickstart-chat")
        .with_token(saved_token)
        .on_connect(lambda conn, identity, token: print("connected as", identity))
        .build()
    )
    conn.db.message.on_insert(lambda ctx, message: print(message.text))
    conn.subscription_builder().on_applied(lambda ctx: print("ready")).subscribe(["SELECT * FROM message"])
    conn.reducers.send_message("hi")
    conn.run()          # or frame_tick() each frame, or run_threaded(); asyncio: await build_async()

Used directly it reads the schema from the server; generated bindings (``spacetime generate --lang python``)
subclass ``DbConnection`` with typed rows and reducer helpers.
"""

from spacetimedb.sats import ConnectionId, Identity, ScheduleAt, Some, SumValue, TimeDuration, Timestamp

from .connection import (
    BTreeIndex,
    DbConnection,
    DbConnectionBuilder,
    Pending,
    ReducerCall,
    RemoteProcedures,
    RemoteReducers,
    RemoteTables,
    SubscriptionBuilder,
    SubscriptionHandle,
    TableHandle,
    UniqueIndex,
)
from .credentials import Credentials
from .errors import (
    ConnectError,
    ConnectionClosed,
    ProcedureError,
    QueryError,
    ReducerError,
    SchemaError,
    SpacetimeError,
    SubscriptionFailed,
)
from .events import (
    ErrorEvent,
    Event,
    EventContext,
    ReducerEvent,
    ReducerStatus,
    SubscribeAppliedEvent,
    TransactionEvent,
    UnsubscribeAppliedEvent,
)
from .schema import ModuleSchema, ReducerSchema, TableSchema

__all__ = [
    "BTreeIndex",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionId",
    "Credentials",
    "DbConnection",
    "DbConnectionBuilder",
    "ErrorEvent",
    "Event",
    "EventContext",
    "Identity",
    "ModuleSchema",
    "Pending",
    "QueryError",
    "ReducerCall",
    "ReducerError",
    "ReducerEvent",
    "ReducerSchema",
    "ReducerStatus",
    "RemoteProcedures",
    "RemoteReducers",
    "RemoteTables",
    "ScheduleAt",
    "ProcedureError",
    "SchemaError",
    "Some",
    "SpacetimeError",
    "SubscribeAppliedEvent",
    "SubscriptionBuilder",
    "SubscriptionFailed",
    "SubscriptionHandle",
    "SumValue",
    "TableHandle",
    "TableSchema",
    "TimeDuration",
    "Timestamp",
    "TransactionEvent",
    "UniqueIndex",
    "UnsubscribeAppliedEvent",
]
