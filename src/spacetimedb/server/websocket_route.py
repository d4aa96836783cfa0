"""The WebSocket upgrade (``/subscribe``): choosing the protocol, accepting the client in its database's worker,
and serving the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from spacetimedb.controller import WorkerGone
from spacetimedb.protocol import encoder_for, seam, v2
from spacetimedb.protocol.messages import close_reason
from spacetimedb.protocol.v1json import PROTOCOL_V1_JSON
from spacetimedb.sats import ConnectionId

from .auth import payload_json
from .route_support import HttpError, _bool, _database, _server, _token, claims_of
from .session import Session

if TYPE_CHECKING:
    from .app import Server

PROTOCOL_PREFERENCE = (v2.PROTOCOL_V3, v2.PROTOCOL_V2, PROTOCOL_V1_JSON)
COMPRESSIONS = {"None": v2.COMPRESSION_NONE, "Gzip": v2.COMPRESSION_GZIP, "Brotli": v2.COMPRESSION_NONE}


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
        claims, token = server.auth.mint_claims()
        identity = claims.identity
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
