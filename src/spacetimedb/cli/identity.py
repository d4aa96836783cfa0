"""Identities and their tokens: obtained from a server (``POST /v1/identity``), saved per server host.

A token is looked up by the host key of the server a command is about to talk to
(:attr:`ServerTarget.host_key`), never by nickname and never "the" token, so it cannot reach a server that
did not issue it. Network calls happen without the config lock; only the save is a locked edit.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spacetimedb.cli import http
from spacetimedb.cli.config import SavedToken, edit_config, read_config
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.servers import ServerTarget


@dataclass(frozen=True)
class LoginResult:
    identity: str
    token: str
    replaced: SavedToken | None  # what was saved for that host before, if it was a different token


def request_new_identity(target: ServerTarget) -> SavedToken:
    """Ask ``target`` to mint a fresh identity; returns its token and identity."""
    response = http.raise_for_status(http.request("POST", target.endpoint("/v1/identity")), target)
    payload = response.json()
    identity = payload.get("identity") if isinstance(payload, dict) else None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not (isinstance(identity, str) and identity and isinstance(token, str) and token):
        raise CliError(f"POST {response.url} did not return an identity and a token")
    return SavedToken(token=token, identity=identity.removeprefix("0x"))


def login_with_new_identity(config_path: Path, target: ServerTarget) -> LoginResult:
    """``spacetime login --server-issued-login``: a new identity from ``target``, replacing any saved one."""
    issued = request_new_identity(target)
    with edit_config(config_path) as config:
        previous = config.saved_token(target.host_key)
        config.save_token(target.host_key, issued)
    replaced = previous if previous is not None and previous.token != issued.token else None
    return LoginResult(identity=issued.identity or "", token=issued.token, replaced=replaced)


def token_for_server(
    config_path: Path,
    target: ServerTarget,
    *,
    announce: Callable[[str], None] | None = None,
) -> str:
    """The token saved for ``target``'s host; if there is none, obtain one from ``target`` and save it.

    For commands that act as an identity (publish, call, sql, ...): a newcomer's first command against a
    local server just works, and every later command reuses the same identity. If another process saved a
    token for this host while we were asking the server, theirs wins, so concurrent commands agree.
    """
    saved = read_config(config_path).saved_token(target.host_key)
    if saved is not None:
        return saved.token
    issued = request_new_identity(target)
    with edit_config(config_path) as config:
        saved = config.saved_token(target.host_key)
        if saved is None:
            config.save_token(target.host_key, issued)
    if saved is not None:
        return saved.token
    (announce or _to_stderr)(
        f"saved a new identity {issued.identity} from {target.label} in {config_path} "
        f"(there was none for {target.host_key})"
    )
    return issued.token


def claimed_identity(token: str) -> str | None:
    """The hex identity a JWT's ``hex_identity`` claim names (the signature is not checked: only the server that
    issued the token can), or None when the token is not such a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["hex_identity"]).removeprefix("0x")
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
