"""The legacy ``v1.json.spacetimedb`` protocol: text frames of SATS-JSON, which simple clients and scripts use.

Client frames decode into the typed messages of ``protocol.messages``; ``V1JsonEncoder`` encodes server
messages. Clients other than the caller always get ``TransactionUpdateLight`` (rows only, no reducer details).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from spacetimedb.sats import ConnectionId, DecodeError, Identity, Timestamp, codec
from spacetimedb.sats.json import json_codec

from . import messages
from .messages import (
    COMMITTED,
    LEGACY_QUERY_SET,
    Caller,
    InvalidMessage,
    ProcedureOutcomeLike,
    ReducerOutcome,
    RowDelta,
    TableRowsLike,
)

PROTOCOL_V1_JSON = "v1.json.spacetimedb"


def _option(value: Any) -> dict[str, Any]:
    return {"none": []} if value is None else {"some": value}


def _rows_json(row_type: Any, rows: Sequence[bytes]) -> list[str]:
    """Rows as the v1 JSON protocol carries them: each row's typed JSON, as a string."""
    decode = codec(row_type).decode
    to_json = json_codec(row_type).to_json
    return [json.dumps(to_json(decode(row)), separators=(",", ":")) for row in rows]


def _table_update_json(
    table_id: int, table_name: str, row_type: Any, inserts: Sequence[bytes], deletes: Sequence[bytes]
) -> dict[str, Any]:
    return {
        "table_id": table_id,
        "table_name": table_name,
        "num_rows": len(inserts) + len(deletes),
        "updates": [{"deletes": _rows_json(row_type, deletes), "inserts": _rows_json(row_type, inserts)}],
    }


def _database_update(updates: Sequence[tuple[int, RowDelta]]) -> dict[str, Any]:
    tables = []
    for _, delta in updates:
        cached = delta.cache.get("v1json")
        if cached is None:
            cached = delta.cache["v1json"] = _table_update_json(
                delta.table_id, delta.table_name, delta.row_type, delta.inserts, delta.deletes
            )
        tables.append(cached)
    return {"tables": tables}


def _rows_update(tables: Sequence[TableRowsLike] | None, deletes: bool = False) -> dict[str, Any]:
    out = []
    for table in tables or []:
        inserts, removed = ([], table.rows) if deletes else (table.rows, [])
        out.append(_table_update_json(table.table_id, table.table_name, table.row_type, inserts, removed))
    return {"tables": out}


def _dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in body or not isinstance(body[name], kind) or (isinstance(body[name], bool) and kind is int):
        raise InvalidMessage(f"missing or invalid field `{name}`")
    return body[name]


def _query_id(body: dict[str, Any]) -> int:
    query_id = _field(body, "query_id", (dict, int))
    if isinstance(query_id, dict):
        query_id = query_id.get("id")
    if not isinstance(query_id, int) or not 0 <= query_id < LEGACY_QUERY_SET:
        raise InvalidMessage("invalid `query_id`")
    return query_id


def decode_frame(data: bytes | str) -> list[messages.ClientMessage]:
    """A client text frame as typed messages. Raises ``DecodeError`` naming what is wrong: ``InvalidMessage``
    for well-formed JSON that is not a message, a plain ``DecodeError`` for a frame that is not JSON."""
    if not isinstance(data, str):
        try:
            data = data.decode("utf-8")  # text frames are UTF-8 (json.loads would guess from the bytes)
        except UnicodeDecodeError as exc:
            raise DecodeError(f"a text frame must be UTF-8: {exc}") from None
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("invalid JSON: nested too deeply") from None
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise InvalidMessage("a message is a JSON object with exactly one key, the message type")
    ((kind, body),) = parsed.items()
    if not isinstance(body, dict):
        raise InvalidMessage(f"the body of `{kind}` must be an object")
    return [_typed(kind, body)]


def _json_args(body: dict[str, Any]) -> Any:
    try:
        return json.loads(_field(body, "args", str))
    except ValueError as exc:
        raise DecodeError(f"`args` is not JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("`args` is nested too deeply") from None


def _typed(kind: str, body: dict[str, Any]) -> messages.ClientMessage:
    match kind:
        case "CallReducer":
            return messages.CallReducer(
                _field(body, "request_id", int),
                _field(body, "reducer", str),
                _json_args(body),
                json_args=True,
            )
        case "Subscribe":
            queries = tuple(str(q) for q in _field(body, "query_strings", list))
            return messages.Subscribe(
                _field(body, "request_id", int), LEGACY_QUERY_SET, queries, replaces_legacy=True
            )
        case "SubscribeSingle":
            query = _field(body, "query", str)
            return messages.Subscribe(_field(body, "request_id", int), _query_id(body), (query,), multi=False)
        case "SubscribeMulti":
            queries = tuple(str(q) for q in _field(body, "query_strings", list))
            return messages.Subscribe(_field(body, "request_id", int), _query_id(body), queries)
        case "Unsubscribe" | "UnsubscribeMulti":
            return messages.Unsubscribe(_field(body, "request_id", int), _query_id(body), True)
        case "OneOffQuery":
            return messages.OneOffQuery(body.get("message_id", ""), _field(body, "query_string", str))
        case "CallProcedure":
            return messages.CallProcedure(
                _field(body, "request_id", int),
                str(body.get("procedure", "")),
                body.get("args"),
                json_args=True,
            )
    raise InvalidMessage(f"unknown message type `{kind}`")


class V1JsonEncoder:
    """Server messages of the v1 JSON protocol, as UTF-8 JSON text."""

    name = PROTOCOL_V1_JSON
    binary = False
    batched = False

    def initial_connection(self, identity: Identity, connection_id: ConnectionId, token: str) -> bytes:
        return _dumps(
            {
                "IdentityToken": {
                    "identity": {"__identity__": "0x" + identity.to_hex()},
                    "token": token,
                    "connection_id": {"__connection_id__": connection_id.value},
                }
            }
        )

    def _transaction_update(
        self,
        request_id: int,
        reducer: str,
        args: Any,
        status: dict[str, Any],
        timestamp: Timestamp,
        micros: int,
        caller: Caller,
    ) -> bytes:
        return _dumps(
            {
                "TransactionUpdate": {
                    "status": status,
                    "timestamp": {"__timestamp_micros_since_unix_epoch__": timestamp.micros},
                    "caller_identity": {"__identity__": "0x" + caller.identity.to_hex()},
                    "caller_connection_id": {"__connection_id__": caller.connection_id.value},
                    "reducer_call": {
                        "reducer_name": reducer,
                        "reducer_id": 0,
                        "args": json.dumps(args, separators=(",", ":")),
                        "request_id": request_id,
                    },
                    "energy_quanta_used": {"quanta": 0},
                    "total_host_execution_duration": {"__time_duration_micros__": micros},
                }
            }
        )

    def reducer_result(
        self, request_id: int, reducer: str, args: Any, outcome: ReducerOutcome, caller: Caller
    ) -> bytes:
        if outcome.status == messages.CallStatus.COMMITTED:
            status: dict[str, Any] = {"Committed": _database_update(outcome.caller_updates)}
        elif outcome.status == messages.CallStatus.OUT_OF_BUDGET:
            status = {"OutOfEnergy": []}
        else:
            status = {"Failed": outcome.message or outcome.status}
        return self._transaction_update(
            request_id, reducer, args, status, outcome.timestamp, outcome.duration_micros, caller
        )

    def transaction_update(self, updates: Sequence[tuple[int, RowDelta]]) -> bytes:
        return _dumps({"TransactionUpdateLight": {"request_id": 0, "update": _database_update(updates)}})

    def subscription_error(self, request_id: int | None, query_set_id: int, message: str) -> bytes:
        query_id = None if query_set_id == LEGACY_QUERY_SET else {"id": query_set_id}
        return _dumps(
            {
                "SubscriptionError": {
                    "total_host_execution_duration_micros": 0,
                    "request_id": _option(request_id),
                    "query_id": _option(query_id),
                    "table_id": _option(None),
                    "error": message,
                }
            }
        )

    def subscribe_applied(
        self, request_id: int, query_set_id: int, tables: Sequence[TableRowsLike], multi: bool
    ) -> bytes:
        update = _rows_update(tables)
        if query_set_id == LEGACY_QUERY_SET:
            return _dumps(
                {
                    "InitialSubscription": {
                        "database_update": update,
                        "request_id": request_id,
                        "total_host_execution_duration": {"__time_duration_micros__": 0},
                    }
                }
            )
        if multi:
            return _dumps(
                {
                    "SubscribeMultiApplied": {
                        "request_id": request_id,
                        "total_host_execution_duration_micros": 0,
                        "query_id": {"id": query_set_id},
                        "update": update,
                    }
                }
            )
        table = (
            update["tables"][0]
            if update["tables"]
            else {"table_id": 0, "table_name": "", "num_rows": 0, "updates": []}
        )
        return _dumps(
            {
                "SubscribeApplied": {
                    "request_id": request_id,
                    "total_host_execution_duration_micros": 0,
                    "query_id": {"id": query_set_id},
                    "rows": {
                        "table_id": table["table_id"],
                        "table_name": table["table_name"],
                        "table_rows": table,
                    },
                }
            }
        )

    def unsubscribe_applied(
        self, request_id: int, query_set_id: int, tables: Sequence[TableRowsLike] | None
    ) -> bytes:
        return _dumps(
            {
                "UnsubscribeMultiApplied": {
                    "request_id": request_id,
                    "total_host_execution_duration_micros": 0,
                    "query_id": {"id": query_set_id},
                    "update": _rows_update(tables, deletes=True),
                }
            }
        )

    def one_off_result(
        self, request_id: Any, tables: Sequence[TableRowsLike] | None, error: str | None
    ) -> bytes:
        return _dumps(
            {
                "OneOffQueryResponse": {
                    "message_id": request_id,
                    "error": _option(error),
                    "tables": [
                        {"table_name": t.table_name, "rows": _rows_json(t.row_type, t.rows)}
                        for t in tables or []
                    ],
                    "total_host_execution_duration": {"__time_duration_micros__": 0},
                }
            }
        )

    def procedure_error(self, request_id: int, message: str) -> bytes:
        return _procedure_result(request_id, {"InternalError": message}, Timestamp.now(), 0)

    def procedure_result(self, request_id: int, outcome: ProcedureOutcomeLike) -> bytes:
        if outcome.status == COMMITTED:
            status: dict[str, Any] = {"Returned": outcome.value_json()}
        else:
            status = {"InternalError": outcome.message or outcome.status}
        return _procedure_result(request_id, status, outcome.timestamp, outcome.duration_micros)


def _procedure_result(request_id: int, status: dict[str, Any], timestamp: Timestamp, micros: int) -> bytes:
    return _dumps(
        {
            "ProcedureResult": {
                "status": status,
                "timestamp": {"__timestamp_micros_since_unix_epoch__": timestamp.micros},
                "total_host_execution_duration": {"__time_duration_micros__": micros},
                "request_id": request_id,
            }
        }
    )
