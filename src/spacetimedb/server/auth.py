"""Identities and tokens.

The server owns an ECDSA P-256 key pair (``keys/id_ecdsa`` PKCS#8 PEM, mode 0600, and ``keys/id_ecdsa.pub``),
generated on first start. It mints ES256 JWTs with the claims SpacetimeDB uses (``hex_identity``, ``sub``,
``iss``, ``aud``, ``iat``, ``exp``) and derives identities from (issuer, subject) exactly as SpacetimeDB does:
``h = blake3(iss + "|" + sub)[:26]``, ``c = blake3(b"\\xc2\\x00" + h)[:4]``, identity = ``c2 00 ‖ c ‖ h``
(big-endian). Tokens signed by another key, malformed tokens, and tokens whose ``hex_identity`` does not match
their issuer and subject are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from spacetimedb.sats import Identity

LOCAL_ISSUER = "localhost"
AUDIENCE = "spacetimedb"
WEBSOCKET_TOKEN_SECONDS = 60


class AuthError(Exception):
    """A credential was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def identity_from_claims(issuer: str, subject: str) -> Identity:
    digest = blake3.blake3(f"{issuer}|{subject}".encode()).digest()[:26]
    checksum = blake3.blake3(b"\xc2\x00" + digest).digest()[:4]
    return Identity.from_be_bytes(b"\xc2\x00" + checksum + digest)


@dataclass(frozen=True)
class Claims:
    identity: Identity
    subject: str
    issuer: str
    audience: tuple[str, ...] = (AUDIENCE,)
    issued_at: int = 0
    expires_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def payload_json(claims: Claims) -> str:
    """The token payload ``claims`` came from, as JSON (what a module reads as ``ctx.sender_auth``)."""
    payload: dict[str, Any] = dict(claims.extra)
    payload.update(
        hex_identity=claims.identity.to_hex(),
        sub=claims.subject,
        iss=claims.issuer,
        aud=list(claims.audience),
        iat=claims.issued_at,
        exp=claims.expires_at,
    )
    return json.dumps(payload, separators=(",", ":"))


class KeyPair:
    """The server's signing key and its public half."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.public_pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def ephemeral(cls) -> KeyPair:
        """A key pair that lives only in memory (an in-memory server: tokens die with it)."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load_or_create(cls, directory: Path) -> KeyPair:
        directory.mkdir(parents=True, exist_ok=True)
        private_path = directory / "id_ecdsa"
        public_path = directory / "id_ecdsa.pub"
        if private_path.exists():
            key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{private_path} is not an ECDSA private key")
            return cls(key)
        if public_path.exists():
            raise ValueError(
                f"{public_path} exists without its private key {private_path}; remove it or restore the key"
            )
        pair = cls(ec.generate_private_key(ec.SECP256R1()))
        pem = pair.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        temp = private_path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, private_path)
        public_path.write_bytes(pair.public_pem)
        return pair

    def fingerprint(self) -> str:
        return hashlib.sha256(self.public_pem).hexdigest()


class TokenAuthority:
    """Mints and validates the server's tokens."""

    def __init__(self, keys: KeyPair, issuer: str = LOCAL_ISSUER) -> None:
        self.keys = keys
        self.issuer = issuer

    def mint(
        self, subject: str | None = None, expires_in: int | None = None, extra: dict[str, Any] | None = None
    ) -> tuple[Identity, str]:
        """A new token for ``subject`` (a fresh random one by default) and its identity."""
        subject = subject or str(uuid.uuid4())
        identity = identity_from_claims(self.issuer, subject)
        now = int(time.time())
        payload: dict[str, Any] = dict(extra or {})
        payload.update(
            hex_identity=identity.to_hex(),
            sub=subject,
            iss=self.issuer,
            aud=[AUDIENCE],
            iat=now,
        )
        if expires_in is not None:
            payload["exp"] = now + expires_in
        token = jwt.encode(payload, self.keys.private_key, algorithm="ES256", headers={"typ": "JWT"})
        return identity, token

    def reissue(self, claims: Claims, expires_in: int) -> str:
        """A short-lived token with the same subject and issuer (``/v1/identity/websocket-token``)."""
        now = int(time.time())
        payload = dict(claims.extra)
        payload.update(
            hex_identity=claims.identity.to_hex(),
            sub=claims.subject,
            iss=claims.issuer,
            aud=list(claims.audience),
            iat=now,
            exp=now + expires_in,
        )
        return jwt.encode(payload, self.keys.private_key, algorithm="ES256", headers={"typ": "JWT"})

    def validate(self, token: str) -> Claims:
        """Check the signature (ours only), expiry and identity; raises ``AuthError``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.exceptions.DecodeError:
            raise AuthError("Authorization is invalid: malformed token", 400) from None
        if header.get("alg") != "ES256":
            raise AuthError(f"Authorization failed: unsupported algorithm {header.get('alg')!r}")
        try:
            payload = jwt.decode(
                token,
                self.keys.public_key,
                algorithms=["ES256"],
                # SpacetimeDB writes `"exp": null` for tokens that never expire; checked below instead
                options={"verify_aud": False, "verify_exp": False, "require": ["sub", "iss"]},
            )
        except jwt.exceptions.InvalidSignatureError:
            raise AuthError("Authorization failed: token not signed by this instance") from None
        except jwt.exceptions.DecodeError:
            raise AuthError("Authorization is invalid: malformed token", 400) from None
        except jwt.exceptions.InvalidTokenError as exc:
            raise AuthError(f"Authorization failed: {exc}") from None
        expires = payload.get("exp")
        if expires is not None:
            if not isinstance(expires, (int, float)) or isinstance(expires, bool):
                raise AuthError("Authorization is invalid: `exp` must be a number", 400)
            if expires < time.time():
                raise AuthError("Authorization failed: token expired")
        return self._claims(payload)

    def _claims(self, payload: dict[str, Any]) -> Claims:
        subject, issuer = payload.get("sub"), payload.get("iss")
        if (
            not isinstance(subject, str)
            or not isinstance(issuer, str)
            or not (0 < len(subject) <= 128 and 0 < len(issuer) <= 128)
        ):
            raise AuthError("Authorization failed: `sub` and `iss` must be strings of 1 to 128 bytes")
        if issuer != self.issuer:
            raise AuthError(f"Authorization failed: foreign issuer {issuer!r}")
        identity = identity_from_claims(issuer, subject)
        claimed = payload.get("hex_identity")
        if claimed is not None and claimed != identity.to_hex():
            raise AuthError(
                "Authorization failed: hex_identity does not match the token's issuer and subject"
            )
        audience = payload.get("aud", [])
        if isinstance(audience, str):
            audience = [audience]
        known = {"hex_identity", "sub", "iss", "aud", "iat", "exp"}
        return Claims(
            identity=identity,
            subject=subject,
            issuer=issuer,
            audience=tuple(audience),
            issued_at=int(payload.get("iat") or 0),
            expires_at=payload.get("exp"),
            extra={k: v for k, v in payload.items() if k not in known},
        )
