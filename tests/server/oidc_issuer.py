"""A small OpenID Connect issuer for tests, on loopback in a thread of its own: a discovery document, a JWKS, and
its own RSA and EC keys to sign tokens with. It counts the requests it answers, can rotate its keys, and can
misbehave (hang, or send a huge JWKS) as a hostile issuer would."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HANG, HUGE, DEEP = "hang", "huge", "deep"


def new_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class TestIssuer:
    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, path: str = "") -> None:
        self.path = path  # issuers may live under a path, e.g. https://auth.example/realms/x
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (algorithm, private key), all published
        self.hits = {"discovery": 0, "jwks": 0}
        self.misbehaviour: str | None = None
        self.junk: list[Any] = []  # entries published before the keys
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.path}"

    def __enter__(self) -> TestIssuer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def add_key(self, algorithm: str, kid: str | None = None, key: Any = None) -> str:
        kid = kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = (algorithm, key or new_key(algorithm))
        return kid

    def rotate(self, algorithm: str) -> str:
        """Publish a new key in place of all the old ones; its kid."""
        self.keys.clear()
        return self.add_key(algorithm)

    def token(
        self,
        kid: str,
        subject: str = "user-1",
        lifetime: int | None = 3600,
        audience: str | list[str] | None = "web-chat",
        key: Any = None,
        **extra: Any,
    ) -> str:
        """A token signed with the key ``kid`` (or with ``key``, under that kid: a forged signature)."""
        algorithm, own_key = self.keys[kid]
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "sub": subject, "iat": now, **extra}
        if lifetime is not None:
            claims["exp"] = now + lifetime
        if audience is not None:
            claims["aud"] = audience
        return jwt.encode(claims, key or own_key, algorithm=algorithm, headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        keys: list[Any] = list(self.junk)
        for kid, (algorithm, key) in self.keys.items():
            encoder = RSAAlgorithm if algorithm == "RS256" else ECAlgorithm
            jwk = encoder.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": keys}

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        self.hits["discovery"] += 1
        if self.misbehaviour == HANG:
            await asyncio.sleep(3600)
        return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json"})

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.hits["jwks"] += 1
        if self.misbehaviour == DEEP:
            return web.Response(body=b"[" * 200_000, content_type="application/json")
        if self.misbehaviour == HUGE:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(b'{"keys": [' + b" " * (1 << 16))
            for _ in range(1024):  # 64 MiB, unless the reader gives up first
                await response.write(b" " * (1 << 16))
            return response
        return web.json_response(self.jwks())

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get(f"{self.path}/.well-known/openid-configuration", self._discovery)
        app.router.add_get(f"{self.path}/jwks.json", self._jwks)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
