"""What every route uses: HTTP errors and the error middleware, the server of a request, authentication (the
caller, their claims, minted identities) and the database a path names, owner checks, boolean query parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from spacetimedb.controller import DatabaseNotFoundError, DatabaseUnavailableError, DurabilityLost, WorkerGone
from spacetimedb.sats import Identity

from .auth import AuthError, Claims, payload_json

if TYPE_CHECKING:
    from .app import Server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    minted, token = _server(request).auth.mint_claims()
    return minted.identity, token, payload_json(minted)


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
