"""``spacetimedb.http``: what a module needs to answer HTTP requests (see docs/http-handlers.md).

``@handler`` declares ``def h(ctx: HandlerContext, request: Request) -> Response``; the ``@router`` function
returns the ``Router`` that serves handlers at ``/v1/database/NAME/route/PATH``.
"""

from spacetimedb.module.handlers import HandlerContext, Request, Response, Router, handler, router

__all__ = ["HandlerContext", "Request", "Response", "Router", "handler", "router"]
