"""Routes of identities: ping and health, new identities and tokens, the public key, verification, an identity's
databases."""

from __future__ import annotations

import asyncio

from aiohttp import web

from spacetimedb import __version__
from spacetimedb.sats import Identity

from .auth import AuthError
from .route_support import HttpError, _server, claims_of, require_caller

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
