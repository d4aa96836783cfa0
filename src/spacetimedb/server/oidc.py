"""Signing keys of the OpenID Connect issuers the operator trusts (``--oidc-issuer``).

For each trusted issuer it finds the JWKS through the issuer's discovery document
(``ISSUER/.well-known/openid-configuration`` → ``jwks_uri``), keeps the RS256 and ES256 keys, and answers which
keys may have signed a token (by ``kid`` and algorithm). Keys are cached; a ``kid`` it does not know, or keys older
than ``max_age_seconds``, make it fetch them again, at most once per ``refresh_seconds`` per issuer, so that a
stream of tokens with made-up key ids cannot turn the server into a load generator. Every fetch is bounded in
time and size: a hostile or broken issuer costs a request at most ``timeout_seconds`` and never bloats the server.

Token checks themselves (signature, issuer, expiry, audience) are ``auth``'s; this module imports only aiohttp,
PyJWT and cryptography.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)

SUPPORTED_ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048
DISCOVERY_PATH = "/.well-known/openid-configuration"


class KeyLookupError(Exception):
    """No key can check the token: the issuer's keys could not be fetched, or none has the token's key id."""


@dataclass(frozen=True)
class OidcIssuer:
    """A trusted issuer: tokens whose ``iss`` is ``url`` (a trailing slash aside), and, where ``audience`` is set,
    whose ``aud`` includes it."""

    url: str
    audience: str | None = None

    @classmethod
    def parse(cls, text: str) -> OidcIssuer:
        """``URL`` or ``URL#AUDIENCE`` (an issuer URL has no fragment, so ``#`` cannot be part of it)."""
        url, _, audience = text.strip().partition("#")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(
                f"--oidc-issuer takes an issuer URL such as https://auth.example (optionally #AUDIENCE), got {text!r}"
            )
        return cls(url, audience or None)

    @property
    def key(self) -> str:
        return normalize_issuer(self.url)

    def describe(self) -> str:
        return self.url if self.audience is None else f"{self.url} (audience {self.audience})"


def normalize_issuer(url: str) -> str:
    return url.rstrip("/")


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 5.0  # for the discovery document and the JWKS together
    max_bytes: int = 1 << 20  # per document
    refresh_seconds: float = 30.0  # an issuer's keys are fetched at most this often
    max_age_seconds: float = 3600.0  # keys older than this are fetched again on the next token


@dataclass(frozen=True)
class SigningKey:
    kid: str | None
    algorithm: str
    key: Any  # a cryptography public key


class _IssuerKeys:
    """One issuer's cached keys, and when they were last fetched or tried."""

    def __init__(self, issuer: OidcIssuer) -> None:
        self.issuer = issuer
        self.keys: tuple[SigningKey, ...] = ()
        self.fetched_at: float | None = None
        self.tried_at: float | None = None
        self.last_error: str | None = None
        self.lock = asyncio.Lock()

    def matching(self, kid: str | None, algorithm: str) -> list[SigningKey]:
        return [k for k in self.keys if k.algorithm == algorithm and (kid is None or k.kid == kid)]


class OidcKeys:
    """The trusted issuers and their cached signing keys."""

    def __init__(
        self,
        issuers: Iterable[OidcIssuer],
        limits: FetchLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuers = {issuer.key: issuer for issuer in issuers}
        self.limits = limits or FetchLimits()
        self.clock = clock
        self._cache = {key: _IssuerKeys(issuer) for key, issuer in self.issuers.items()}
        self._session: aiohttp.ClientSession | None = None

    @property
    def summary(self) -> str | None:
        """What the server prints at start, when it trusts any issuer."""
        if not self.issuers:
            return None
        return "also accepting the tokens of OIDC issuers: " + ", ".join(
            issuer.describe() for issuer in self.issuers.values()
        )

    def trusted(self, iss: str) -> OidcIssuer | None:
        return self.issuers.get(normalize_issuer(iss))

    async def keys_for(self, issuer: OidcIssuer, kid: str | None, algorithm: str) -> list[SigningKey]:
        """The keys of ``issuer`` that may have signed a token with this ``kid`` (any, when None) and algorithm;
        raises ``KeyLookupError`` saying why there are none."""
        cache = self._cache[issuer.key]
        async with cache.lock:
            now = self.clock()
            stale = cache.fetched_at is None or now - cache.fetched_at >= self.limits.max_age_seconds
            if (stale or not cache.matching(kid, algorithm)) and self._may_fetch(cache, now):
                await self._refresh(cache, now)
            found = cache.matching(kid, algorithm)
        if found:
            return found
        if cache.fetched_at is None:
            raise KeyLookupError(f"could not fetch the keys of issuer {issuer.url}: {cache.last_error}")
        which = f"key id {kid!r}" if kid is not None else "key"
        age = self.clock() - cache.fetched_at
        failed = f"; fetching them again failed: {cache.last_error}" if cache.last_error else ""
        raise KeyLookupError(
            f"no {algorithm} {which} among the keys of issuer {issuer.url} (fetched {age:.0f} s ago{failed}; "
            f"they are fetched again at most every {self.limits.refresh_seconds:g} s)"
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _may_fetch(self, cache: _IssuerKeys, now: float) -> bool:
        return cache.tried_at is None or now - cache.tried_at >= self.limits.refresh_seconds

    async def _refresh(self, cache: _IssuerKeys, now: float) -> None:
        cache.tried_at = now
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                cache.keys = await self._fetch_keys(cache.issuer)
        # RecursionError: JSON nested deeper than the parser goes
        except (KeyLookupError, aiohttp.ClientError, TimeoutError, ValueError, RecursionError) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {self.limits.timeout_seconds:g} s"
            cache.last_error = reason
            log.warning("fetching the keys of OIDC issuer %s failed: %s", cache.issuer.url, reason)
            return
        cache.fetched_at = now
        cache.last_error = None

    async def _fetch_keys(self, issuer: OidcIssuer) -> tuple[SigningKey, ...]:
        discovery = await self._get_json(issuer.key + DISCOVERY_PATH)
        named = discovery.get("issuer")
        if isinstance(named, str) and normalize_issuer(named) != issuer.key:
            raise KeyLookupError(f"its discovery document names another issuer, {named!r}")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("http", "https"):
            raise KeyLookupError("its discovery document has no http(s) `jwks_uri`")
        jwks = await self._get_json(jwks_uri)
        entries = jwks.get("keys")
        if not isinstance(entries, list):
            raise KeyLookupError(f"{jwks_uri} has no `keys` list")
        return tuple(key for entry in entries if (key := _signing_key(entry)) is not None)

    async def _get_json(self, url: str) -> dict[str, Any]:
        session = self._client()
        async with session.get(url, headers={"Accept": "application/json"}, max_redirects=3) as response:
            if response.status != 200:
                raise KeyLookupError(f"{url} answered HTTP {response.status}")
            limit = self.limits.max_bytes
            if (response.content_length or 0) > limit:
                raise KeyLookupError(f"{url} is larger than {limit} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > limit:
                    raise KeyLookupError(f"{url} is larger than {limit} bytes")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise KeyLookupError(f"{url} is not a JSON object")
        return document

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.limits.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=16),
            )
        return self._session


def _signing_key(entry: Any) -> SigningKey | None:
    """The JWKS entry as a key for RS256 or ES256, or None for any other (encryption keys, other algorithms, RSA
    keys under 2048 bits, entries PyJWT cannot read)."""
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    if entry.get("alg") not in (None, *SUPPORTED_ALGORITHMS):
        return None
    try:
        parsed = jwt.PyJWK(entry)
    except (jwt.exceptions.PyJWKError, jwt.exceptions.InvalidKeyError, ValueError, TypeError, KeyError):
        log.info("skipping a JWKS entry that is not a usable signing key: kid=%r", entry.get("kid"))
        return None
    if parsed.algorithm_name not in SUPPORTED_ALGORITHMS:
        return None
    if isinstance(parsed.key, rsa.RSAPublicKey) and parsed.key.key_size < MIN_RSA_BITS:
        log.warning("skipping RSA key kid=%r: %d bits is too weak", entry.get("kid"), parsed.key.key_size)
        return None
    kid = entry.get("kid")
    return SigningKey(kid if isinstance(kid, str) else None, parsed.algorithm_name, parsed.key)
