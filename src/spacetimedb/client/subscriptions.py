"""``conn.subscription_builder()``: ``SubscriptionBuilder`` subscribes a query set, ``SubscriptionHandle`` is one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from spacetimedb.protocol import v2

from .errors import SpacetimeError
from .events import EventContext

if TYPE_CHECKING:
    from .connection import DbConnection


# ---- subscriptions ----------------------------------------------------------------------------------------------


class SubscriptionHandle:
    """One subscribed query set. ``unsubscribe()`` drops it (its rows leave the cache, ``on_delete`` fires)."""

    def __init__(
        self,
        conn: DbConnection,
        queries: tuple[str, ...],
        on_applied: Callable[[EventContext], None] | None,
        on_error: Callable[[EventContext, Exception], None] | None,
    ) -> None:
        self._conn = conn
        self.queries = queries
        self.query_set_id = -1
        self._on_applied = on_applied
        self._on_error = on_error
        self._on_end: Callable[[EventContext], None] | None = None
        self.is_active = False
        self.is_ended = False
        self._unsubscribe_requested = False

    def unsubscribe(self) -> None:
        self.unsubscribe_then(None)

    def unsubscribe_then(self, on_end: Callable[[EventContext], None] | None) -> None:
        """Unsubscribe and call ``on_end(ctx)`` once the server confirmed it (after the rows left)."""
        if self._unsubscribe_requested or self.is_ended:
            raise SpacetimeError("this subscription was already unsubscribed")
        self._unsubscribe_requested = True
        self._on_end = on_end
        self._conn._send(
            v2.encode_client_message(
                v2.UNSUBSCRIBE,
                self._conn._next_request_id(),
                (self.query_set_id,),
                v2.UNSUBSCRIBE_SEND_DROPPED_ROWS,
            )
        )


class SubscriptionBuilder:
    """``conn.subscription_builder().on_applied(cb).on_error(cb).subscribe([...])``."""

    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn
        self._on_applied: Callable[[EventContext], None] | None = None
        self._on_error: Callable[[EventContext, Exception], None] | None = None

    def on_applied(self, callback: Callable[[EventContext], None]) -> SubscriptionBuilder:
        """``callback(ctx)`` once the initial rows are in the cache (their ``on_insert`` callbacks follow)."""
        self._on_applied = callback
        return self

    def on_error(self, callback: Callable[[EventContext, Exception], None]) -> SubscriptionBuilder:
        """``callback(ctx, error)`` if the server refuses the queries or drops them later."""
        self._on_error = callback
        return self

    def subscribe(self, queries: str | Sequence[str]) -> SubscriptionHandle:
        queries = (queries,) if isinstance(queries, str) else tuple(queries)
        if not queries:
            raise ValueError("subscribe to at least one query")
        handle = SubscriptionHandle(self._conn, queries, self._on_applied, self._on_error)
        self._conn._register_subscription(handle)
        return handle

    def subscribe_to_all_tables(self) -> SubscriptionHandle:
        return self.subscribe([f'SELECT * FROM "{name}"' for name in self._conn.module.tables])
