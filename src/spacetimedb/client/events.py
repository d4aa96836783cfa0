"""Events and the contexts callbacks receive.

Every callback gets a context first: ``ctx.event`` says what caused it (a reducer call of this client, a
transaction of someone else, a subscription being applied or ended, an error), ``ctx.db`` and
``ctx.reducers`` reach the connection's tables and reducers, ``ctx.connection`` the connection itself.
Protocol v2 tells a client about reducer calls only for its own calls: other clients' changes arrive as
``TransactionEvent`` without reducer details.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from spacetimedb.sats import ConnectionId, Identity, Timestamp

if TYPE_CHECKING:
    from .connection import DbConnection


class ReducerStatus(enum.Enum):
    COMMITTED = "committed"
    FAILED = "failed"  # the reducer raised: its error text is in ``ReducerEvent.error``
    INTERNAL_ERROR = "internal_error"  # the server could not run it (unknown reducer, bad arguments, ...)


@dataclass(frozen=True)
class ReducerEvent:
    """A reducer call made by this client, and how it ended."""

    tag: ClassVar[str] = "Reducer"
    reducer: str
    args: tuple[Any, ...]
    status: ReducerStatus
    error: str | None
    timestamp: Timestamp
    caller_identity: Identity | None
    caller_connection_id: ConnectionId | None
    request_id: int

    @property
    def committed(self) -> bool:
        return self.status is ReducerStatus.COMMITTED


@dataclass(frozen=True)
class TransactionEvent:
    """A transaction that was not this client's reducer call (another client's, a scheduled one, SQL)."""

    tag: ClassVar[str] = "Transaction"


@dataclass(frozen=True)
class SubscribeAppliedEvent:
    tag: ClassVar[str] = "SubscribeApplied"


@dataclass(frozen=True)
class UnsubscribeAppliedEvent:
    tag: ClassVar[str] = "UnsubscribeApplied"


@dataclass(frozen=True)
class ErrorEvent:
    tag: ClassVar[str] = "Error"
    error: BaseException


Event = ReducerEvent | TransactionEvent | SubscribeAppliedEvent | UnsubscribeAppliedEvent | ErrorEvent


@dataclass(frozen=True)
class EventContext:
    """What every callback receives first."""

    connection: DbConnection
    event: Event | None

    @property
    def db(self) -> Any:
        return self.connection.db

    @property
    def reducers(self) -> Any:
        return self.connection.reducers

    @property
    def identity(self) -> Identity | None:
        return self.connection.identity

    def subscription_builder(self) -> Any:
        return self.connection.subscription_builder()

    def disconnect(self) -> None:
        self.connection.disconnect()
