"""Identities and tokens.

The server owns an ECDSA P-256 key pair (``keys/id_ecdsa`` PKCS#8 PEM, mode 0600, and ``keys/id_ecdsa.pub``),
generated on first start. It mints ES256 JWTs with the claims SpacetimeDB uses (``hex_identity``, ``sub``,
``iss``, ``aud``, ``iat``, ``exp``) and derives identities from (issuer, subject) exactly as SpacetimeDB does:
``h = blake3(iss + "|" + sub)[:26]``, ``c = blake3(b"\\xc2\\x00" + h)[:4]``, identity = ``c2 00 ‖ c ‖ h``
(big-endian). Tokens signed by another key, malformed tokens, and tokens whose ``hex_identity`` does not match
their issuer and subject are refused.

It also accepts RS256 and ES256 tokens of the OpenID Connect issuers the operator trusts (``--oidc-issuer``), whose
keys ``oidc`` fetches and caches: checked for signature, issuer, expiry and, where configured, audience, and given
the identity SpacetimeDB gives them (from their issuer and subject). Like SpacetimeDB, the server re-signs such a
user's claims with its own key for ``/v1/identity/websocket-token``, so tokens signed by this server may name a
trusted issuer as well as its own.
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

from .oidc import SUPPORTED_ALGORITHMS, KeyLookupError, OidcIssuer, OidcKeys

LOCAL_ISSUER = "localhost"
AUDIENCE = "spacetimedb"
WEBSOCKET_TOKEN_SECONDS = 60
# clock skew tolerated on another issuer's `iat`, `nbf` and `exp` (its clock is not ours), as SpacetimeDB does
OIDC_LEEWAY_SECONDS = 60


# "Invalid token" is upstream's wording for a token that does not decode (its TokenValidationError), which
# clients and scripts match on (upstream's pg_wire smoketest does).
MALFORMED_TOKEN = "Authorization is invalid: Invalid token: malformed token"


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
    """Mints the server's tokens; validates them and those of the trusted OpenID Connect issuers."""

    def __init__(self, keys: KeyPair, issuer: str = LOCAL_ISSUER, oidc: OidcKeys | None = None) -> None:
        self.keys = keys
        self.issuer = issuer
        self.oidc = oidc or OidcKeys(())

    def mint(
        self, subject: str | None = None, expires_in: int | None = None, extra: dict[str, Any] | None = None
    ) -> tuple[Identity, str]:
        """A new token for ``subject`` (a fresh random one by default) and its identity."""
        claims, token = self.mint_claims(subject, expires_in, extra)
        return claims.identity, token

    def mint_claims(
        self, subject: str | None = None, expires_in: int | None = None, extra: dict[str, Any] | None = None
    ) -> tuple[Claims, str]:
        """``mint``, with the new token's claims (read from the payload just signed: no signature to check)."""
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
        return self._claims(payload), token

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
        """Check a token this server signed (signature, expiry, identity); raises ``AuthError``."""
        algorithm = _algorithm(token)
        payload = self._signed_here(token, algorithm)
        if payload is None:
            raise AuthError("Authorization failed: token not signed by this instance")
        return self._claims(payload)

    async def authenticate(self, token: str) -> Claims:
        """``validate``, or, for a token of a trusted OpenID Connect issuer, check it against that issuer's keys
        (fetched when needed); raises ``AuthError`` saying why a token is refused."""
        algorithm = _algorithm(token)
        payload = self._signed_here(token, algorithm)
        if payload is not None:
            return self._claims(payload)
        iss = _unverified_issuer(token)
        issuer = self.oidc.trusted(iss) if iss is not None and iss != self.issuer else None
        if issuer is None:
            if iss is None or iss == self.issuer:
                raise AuthError("Authorization failed: token not signed by this instance")
            raise AuthError(
                f"Authorization failed: unknown issuer {iss!r} (not this server, nor one it trusts; "
                "see `spacetime start --oidc-issuer`)"
            )
        claims = self._claims(await self._verify_oidc(token, algorithm, issuer), leeway=OIDC_LEEWAY_SECONDS)
        if issuer.audience is not None and issuer.audience not in claims.audience:
            raise AuthError(
                f"Authorization failed: the token's audience {list(claims.audience)} does not include "
                f"{issuer.audience!r}, which issuer {issuer.url} must name"
            )
        return claims

    def _signed_here(self, token: str, algorithm: str) -> dict[str, Any] | None:
        """The token's payload if this server's key signed it, else None."""
        if algorithm != "ES256":
            return None
        return _decode(token, self.keys.public_key, algorithm, leeway=0)

    async def _verify_oidc(self, token: str, algorithm: str, issuer: OidcIssuer) -> dict[str, Any]:
        kid = jwt.get_unverified_header(token).get("kid")
        try:
            keys = await self.oidc.keys_for(issuer, kid if isinstance(kid, str) else None, algorithm)
        except KeyLookupError as exc:
            raise AuthError(f"Authorization failed: {exc}") from None
        for key in keys:
            payload = _decode(token, key.key, algorithm, leeway=OIDC_LEEWAY_SECONDS)
            if payload is not None:
                return payload
        raise AuthError(f"Authorization failed: bad signature (no key of issuer {issuer.url} verifies it)")

    def _claims(self, payload: dict[str, Any], leeway: int = 0) -> Claims:
        subject, issuer = payload.get("sub"), payload.get("iss")
        if (
            not isinstance(subject, str)
            or not isinstance(issuer, str)
            or not (0 < len(subject) <= 128 and 0 < len(issuer) <= 128)
        ):
            raise AuthError("Authorization failed: `sub` and `iss` must be strings of 1 to 128 bytes")
        if issuer != self.issuer and self.oidc.trusted(issuer) is None:
            raise AuthError(f"Authorization failed: foreign issuer {issuer!r}")
        _check_expiry(payload.get("exp"), leeway)
        identity = identity_from_claims(issuer, subject)
        claimed = payload.get("hex_identity")
        if claimed is not None and claimed != identity.to_hex():
            raise AuthError(
                "Authorization failed: hex_identity does not match the token's issuer and subject"
            )
        audience = payload.get("aud", [])
        if isinstance(audience, str):
            audience = [audience]
        if not isinstance(audience, list) or not all(isinstance(a, str) for a in audience):
            raise AuthError("Authorization is invalid: `aud` must be a string or a list of strings", 400)
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


def _algorithm(token: str) -> str:
    """The token's signing algorithm, if it is one the server accepts (``alg: none`` never is)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.DecodeError:
        raise AuthError(MALFORMED_TOKEN, 400) from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in SUPPORTED_ALGORITHMS:
        raise AuthError(
            f"Authorization failed: unsupported algorithm {algorithm!r} (accepted: {', '.join(SUPPORTED_ALGORITHMS)})"
        )
    return algorithm


def _unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read before any signature check (to know whose keys to check it with)."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.exceptions.DecodeError:
        raise AuthError(MALFORMED_TOKEN, 400) from None
    issuer = payload.get("iss")
    return issuer if isinstance(issuer, str) else None


def _decode(token: str, key: Any, algorithm: str, leeway: int) -> dict[str, Any] | None:
    """The payload if ``key`` verifies the signature (None if it does not); other faults raise ``AuthError``."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            leeway=leeway,
            # SpacetimeDB writes `"exp": null` for tokens that never expire; `_check_expiry` checks it instead
            options={"verify_aud": False, "verify_exp": False, "require": ["sub", "iss"]},
        )
    except jwt.exceptions.InvalidSignatureError:
        return None
    except jwt.exceptions.DecodeError:
        raise AuthError(MALFORMED_TOKEN, 400) from None
    except jwt.exceptions.InvalidTokenError as exc:
        raise AuthError(f"Authorization failed: {exc}") from None


def _check_expiry(expires: Any, leeway: int) -> None:
    if expires is None:
        return
    if not isinstance(expires, (int, float)) or isinstance(expires, bool):
        raise AuthError("Authorization is invalid: `exp` must be a number", 400)
    if expires + leeway < time.time():
        raise AuthError("Authorization failed: token expired")
