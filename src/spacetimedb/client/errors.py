"""Exceptions of the client SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import ReducerEvent


class SpacetimeError(Exception):
    """Base class of every error the client SDK raises."""


class SchemaError(SpacetimeError):
    """The module schema is unusable, or a name (table, reducer, column) is not in it."""


class ConnectError(SpacetimeError):
    """The connection could not be made (server unreachable, database unknown, token refused)."""


class ConnectionClosed(SpacetimeError):
    """The connection ended before a request was answered."""


class ReducerError(SpacetimeError):
    """A reducer call did not commit. ``event`` tells why (``event.status``, ``event.error``)."""

    def __init__(self, event: ReducerEvent) -> None:
        super().__init__(f"reducer {event.reducer} failed: {event.error}")
        self.event = event


class ProcedureError(SpacetimeError):
    """A procedure call failed on the server (it raised, ran out of time, or does not exist)."""


class SubscriptionFailed(SpacetimeError):
    """The server refused a subscription (or dropped it later)."""


class QueryError(SpacetimeError):
    """A one-off query failed on the server."""
