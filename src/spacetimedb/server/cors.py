"""Cross-origin requests to ``/v1``, answered as SpacetimeDB answers them: any origin by default, any method, and
the request headers its SDKs send (Authorization, Accept, Content-Type), so that a web page served from another
origin can call the API. ``--cors-origins`` narrows the origins to a list. Imports only aiohttp."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOWED_REQUEST_HEADERS = "authorization,accept,content-type"
ANY_ORIGIN = "*"


class CorsPolicy:
    """Which origins may read ``/v1`` answers (None: any, as upstream)."""

    def __init__(self, origins: Iterable[str] | None = None) -> None:
        self.origins = None if origins is None else frozenset(o.rstrip("/") for o in origins)

    @classmethod
    def parse(cls, text: str | None) -> CorsPolicy:
        """``*`` or None: any origin; else comma-separated origins such as ``https://app.example``."""
        if text is None or text.strip() == ANY_ORIGIN:
            return cls(None)
        origins = [o.strip() for o in text.split(",") if o.strip()]
        for origin in origins:
            if "://" not in origin or origin.count("/") > 2:
                raise ValueError(f"--cors-origins takes origins like https://app.example, got {origin!r}")
        return cls(origins)

    def describe(self) -> str:
        return "any origin" if self.origins is None else ", ".join(sorted(self.origins))

    def allowed_origin(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin`` (None: send none)."""
        if self.origins is None:
            return ANY_ORIGIN
        return origin if origin is not None and origin in self.origins else None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            preflight = web.Response(status=200)
            self._label(preflight, origin)
            if "Access-Control-Allow-Origin" in preflight.headers:
                preflight.headers["Access-Control-Allow-Methods"] = "*"
                preflight.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
            return preflight
        try:
            response = await handler(request)
        except (
            web.HTTPException
        ) as exc:  # aiohttp's own answers (404 of the router, ...): readable by pages too
            self._label(exc, origin)
            raise
        if not response.prepared:  # a WebSocket's headers are sent at the upgrade (and CORS does not apply)
            self._label(response, origin)
        return response

    def _label(self, response: web.StreamResponse, origin: str | None) -> None:
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed
        if self.origins is not None:
            response.headers.add("Vary", "Origin")  # the answer depends on the origin: caches must know
