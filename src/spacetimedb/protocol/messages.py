"""What a client asks for and what a reducer call came to, independent of the wire protocol that carries them.

Each protocol's decoder (``v2.decode_frame``, ``v1json.decode_frame``) turns a client frame into these typed
messages (NamedTuples: one is made per reducer call, and they are the cheapest named records), and each protocol's encoder (``ServerEncoder``) turns results into its own bytes, so whoever serves a
client dispatches with one ``match`` and never looks at a protocol's details.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from spacetimedb.sats import ConnectionId, DecodeError, Identity, ProductType, Timestamp


class CallStatus(enum.StrEnum):
    """How a reducer (or procedure) call ended. A ``str`` enum, so that a status written into JSON or a
    message is its plain value; compare members, never the strings."""

    COMMITTED = "committed"  # it ran to the end (and its transaction committed, for a reducer)
    FAILED = "failed"  # it raised: the error text goes with the outcome
    OUT_OF_BUDGET = "out_of_budget"  # it ran past its time budget and was stopped
    INTERNAL_ERROR = "internal_error"  # the server could not run it
    NO_SPACE = "no_space"  # the database is read-only (its disk is full), so a call that writes is refused


# the members under their old module-level names, which callers may still import
COMMITTED = CallStatus.COMMITTED
FAILED = CallStatus.FAILED
OUT_OF_BUDGET = CallStatus.OUT_OF_BUDGET
INTERNAL_ERROR = CallStatus.INTERNAL_ERROR

# the legacy v1 `Subscribe` replaces all of a client's subscriptions; it lives in this query set
LEGACY_QUERY_SET = 0xFFFF_FFFF


class CallReducer(NamedTuple):
    request_id: int
    reducer: str
    args: Any  # BSATN bytes, or the parsed JSON value when ``json_args``
    json_args: bool = False


class Subscribe(NamedTuple):
    request_id: int
    query_set_id: int
    queries: tuple[str, ...]
    multi: bool = True  # v1 SubscribeSingle is answered with SubscribeApplied
    replaces_legacy: bool = False  # v1 Subscribe drops the client's previous legacy set first


class Unsubscribe(NamedTuple):
    request_id: int
    query_set_id: int
    send_dropped_rows: bool


class OneOffQuery(NamedTuple):
    request_id: Any  # a u32 in v2, the client's message id (any JSON value) in v1
    query: str


class CallProcedure(NamedTuple):
    request_id: int
    procedure: str
    args: Any
    json_args: bool = False


ClientMessage = CallReducer | Subscribe | Unsubscribe | OneOffQuery | CallProcedure


class RowDelta(Protocol):
    """The change of one subscribed query's rows in one transaction (``subscription.TableDelta``); encoders
    keep their encoding of it in ``cache``, so it is encoded once for all its subscribers."""

    table_id: int
    table_name: str
    row_type: ProductType
    inserts: list[bytes]
    deletes: list[bytes]
    cache: dict[str, Any]
    is_event: bool


class ProcedureOutcomeLike(Protocol):
    """What a procedure call came to (``host.procedures.ProcedureOutcome``)."""

    status: CallStatus  # COMMITTED: it returned a value
    message: str | None
    timestamp: Timestamp
    duration_micros: int

    def value_bsatn(self) -> bytes: ...
    def value_json(self) -> Any: ...


class TableRowsLike(Protocol):
    """The rows of one table: initial subscription results, dropped rows, one-off query results."""

    table_id: int
    table_name: str
    row_type: ProductType
    rows: list[bytes]


class ReducerOutcome(Protocol):
    """What a reducer call came to, as a client is told (the host's ``CallOutcome`` is one)."""

    status: CallStatus
    message: str | None
    timestamp: Timestamp
    duration_micros: int
    # the caller's own subscription updates, which travel in its reducer result instead of a broadcast
    caller_updates: Any


@dataclass(frozen=True, slots=True)
class Caller:
    identity: Identity
    connection_id: ConnectionId


class ServerEncoder(Protocol):
    """Encodes server messages in one protocol; every method returns the message's bytes (UTF-8 JSON text
    for a text protocol)."""

    name: str
    binary: bool
    batched: bool

    def initial_connection(self, identity: Identity, connection_id: ConnectionId, token: str) -> bytes: ...
    def reducer_result(
        self, request_id: int, reducer: str, args: Any, outcome: ReducerOutcome, caller: Caller
    ) -> bytes: ...
    def transaction_update(self, updates: Sequence[tuple[int, RowDelta]]) -> bytes: ...
    def subscription_error(self, request_id: int | None, query_set_id: int, message: str) -> bytes: ...
    def subscribe_applied(
        self, request_id: int, query_set_id: int, tables: Sequence[TableRowsLike], multi: bool
    ) -> bytes: ...
    def unsubscribe_applied(
        self, request_id: int, query_set_id: int, tables: Sequence[TableRowsLike] | None
    ) -> bytes: ...
    def one_off_result(
        self, request_id: Any, tables: Sequence[TableRowsLike] | None, error: str | None
    ) -> bytes: ...
    def procedure_error(self, request_id: int, message: str) -> bytes: ...
    def procedure_result(self, request_id: int, outcome: ProcedureOutcomeLike) -> bytes: ...


class InvalidMessage(DecodeError):
    """A client frame that decodes (well-formed JSON) but is not a message of its protocol. Every other
    ``DecodeError`` of a frame means its payload is not in the protocol's encoding at all."""


# how a client's connection closes when one of its frames cannot be served
CLOSE_UNDECODABLE = 1007  # "invalid frame payload data": not UTF-8, not JSON, nested too deeply, not BSATN
CLOSE_INVALID_MESSAGE = 1008  # "policy violation": a well-formed frame that breaks the protocol's rules


def close_code_of(error: DecodeError) -> int:
    return CLOSE_INVALID_MESSAGE if isinstance(error, InvalidMessage) else CLOSE_UNDECODABLE


# a WebSocket close frame carries at most 125 bytes: the code, then the reason
MAX_CLOSE_REASON_BYTES = 123


def close_reason(text: str) -> bytes:
    """``text`` as a close frame's reason: whole if it fits, else cut at a word and ended with an ellipsis."""
    data = text.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return data
    ellipsis = "…".encode()
    cut = data[: MAX_CLOSE_REASON_BYTES - len(ellipsis)].decode("utf-8", "ignore")
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:").encode("utf-8") + ellipsis
